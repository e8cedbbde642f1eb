// Lays out tfjs-node's deps/ from a TfSource and builds its addon with node-gyp against local
// Node headers (never downloading them); reuses a cached build of the same combination.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { NativeBuildError, NativeLoadError, ToolMissingError } from './errors.ts';
import { run, tail } from './exec.ts';
import { LIBRARIES, type TfSource } from './wheel.ts';

/** The names tfjs-node's binding.gyp links against (-ltensorflow -ltensorflow_framework), besides the SONAMEs. */
export const LINK_NAMES: Readonly<Record<string, string>> = {
  'libtensorflow.so': 'libtensorflow_cc.so.2',
  'libtensorflow.so.2': 'libtensorflow_cc.so.2',
  'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
};

/**
 * Makes pkgDir/deps what tfjs-node's install script would have made: include/ (the wheel's
 * headers) and lib/ with both libraries under their SONAMEs (what the addon records as NEEDED and
 * finds through its RUNPATH $ORIGIN/../../deps/lib) and under the names the linker looks for.
 * Everything is a symlink into the unpacked wheel.
 */
export function layoutDeps(pkgDir: string, src: TfSource): string {
  const deps = join(pkgDir, 'deps');
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(join(deps, 'lib'), { recursive: true });
  symlinkSync(src.includeDir, join(deps, 'include'));
  for (const lib of LIBRARIES) symlinkSync(join(src.libDir, lib), join(deps, 'lib', lib));
  for (const [name, target] of Object.entries(LINK_NAMES)) symlinkSync(target, join(deps, 'lib', name));
  writeFileSync(join(deps, 'native-tf.json'), `${JSON.stringify({ tensorflow: src.version, variant: src.variant, from: src.origin }, null, 2)}\n`);
  return deps;
}

function hasHeaders(dir: string): boolean {
  return existsSync(join(dir, 'include', 'node', 'node_api.h')) && existsSync(join(dir, 'include', 'node', 'common.gypi'));
}

function npmrcNodedir(): string | undefined {
  const rc = join(homedir(), '.npmrc');
  if (!existsSync(rc)) return undefined;
  const m = /^\s*nodedir\s*=\s*(.+?)\s*$/m.exec(readFileSync(rc, 'utf8'));
  return m?.[1];
}

/**
 * The Node headers node-gyp should use, so it never downloads them: --nodedir, else npm's nodedir
 * setting (npm_config_nodedir, ~/.npmrc), else the prefix of the running node, else /usr.
 */
export function findNodeDir(explicit?: string): string {
  const candidates = explicit !== undefined ? [explicit] : [process.env.npm_config_nodedir, npmrcNodedir(), dirname(dirname(process.execPath)), '/usr'];
  for (const c of candidates) if (c !== undefined && c !== '' && hasHeaders(c)) return c;
  throw new ToolMissingError(
    `no Node headers (include/node/node_api.h and common.gypi) under ${candidates.filter((c) => c !== undefined && c !== '').join(', ')}: ` +
      `node-gyp would try to download them. Install them (Debian: apt-get install libnode-dev, or the nodejs package's headers) and pass --nodedir DIR.`,
  );
}

/** node-gyp's entry script: $NODE_GYP, npm's bundled copy (beside the running npm or node), else none. */
export function findNodeGyp(): string | undefined {
  const candidates = [
    process.env.NODE_GYP,
    process.env.npm_config_node_gyp,
    process.env.npm_execpath !== undefined ? join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : undefined,
    join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  ];
  return candidates.find((c): c is string => c !== undefined && c !== '' && existsSync(c));
}

/** Where tfjs-node loads its addon from (node-pre-gyp's module_path for this Node's N-API version). */
export function addonPath(pkgDir: string): { file: string; napi: number } {
  const require = createRequire(join(pkgDir, 'package.json'));
  const binary = require('@mapbox/node-pre-gyp') as { find: (packageJson: string) => string };
  const file = binary.find(join(pkgDir, 'package.json'));
  const m = /napi-v(\d+)/.exec(file);
  return { file, napi: m === null ? 8 : Number(m[1]) };
}

export interface BuildOptions {
  readonly pkgDir: string;
  readonly nodedir: string;
  readonly logFile: string;
  readonly log?: (line: string) => void;
  readonly nodeGyp?: string;
}

/** Runs node-gyp rebuild in the package; the addon lands where tfjs-node loads it from. */
export async function buildAddon(opts: BuildOptions): Promise<string> {
  const gyp = opts.nodeGyp ?? findNodeGyp();
  if (gyp === undefined) throw new ToolMissingError('node-gyp not found (looked beside npm and node): install npm, or set NODE_GYP to node-gyp.js.');
  const { file, napi } = addonPath(opts.pkgDir);
  mkdirSync(dirname(opts.logFile), { recursive: true });
  writeFileSync(opts.logFile, '');
  const args = [gyp, 'rebuild', `--nodedir=${opts.nodedir}`, `--napi_build_version=${napi}`, '--module_name=tfjs_binding', `--module_path=${dirname(file)}`, '--jobs=2'];
  opts.log?.(`node-gyp ${args.slice(1).join(' ')} (log: ${opts.logFile})`);
  // Keep node-gyp from reaching for headers or Python it was not given.
  const env = { ...process.env, npm_config_nodedir: opts.nodedir };
  const r = await run(process.execPath, args, {
    cwd: opts.pkgDir,
    env,
    logFile: opts.logFile,
    onLine: (l) => {
      if (/^\s+(CXX|SOLINK|COPY)|gyp (ERR|info ok)|error:/.test(l)) opts.log?.(`  ${l.trim()}`);
    },
  });
  if (r.code !== 0 || !existsSync(file)) throw new NativeBuildError(opts.logFile, tail(r.stderr + r.stdout, 30));
  return file;
}

/** Copies a previously built addon into place. */
export function installCachedAddon(cached: string, pkgDir: string): string {
  const { file } = addonPath(pkgDir);
  mkdirSync(dirname(file), { recursive: true });
  copyFileSync(cached, file);
  return file;
}

export interface SmokeResult {
  readonly tensorflow: string;
  readonly devices: string;
  readonly matmul: number;
}

const SMOKE = `
const tf = await import('@tensorflow/tfjs');
await import(process.env.NATIVE_TF_PACKAGE);
if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") returned false');
const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0];
const b = tf.backend();
console.log(JSON.stringify({ tensorflow: b.binding.TF_Version, devices: String(b.isUsingGpuDevice ? 'GPU' : 'CPU'), matmul: y }));
`;

/**
 * Loads the addon in a fresh Node process (so a crash cannot take this one down), sets the
 * tensorflow backend and multiplies two small matrices; throws NativeLoadError with the details.
 */
export async function smokeTest(pkg: string, root: string, addon: string): Promise<SmokeResult> {
  const env = { ...process.env, NATIVE_TF_PACKAGE: pkg, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' };
  const r = await run(process.execPath, ['--input-type=module', '-e', SMOKE], { cwd: root, env, timeoutMs: 180_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code === 0 && last.startsWith('{')) {
    const res = JSON.parse(last) as SmokeResult;
    if (res.matmul === 11) return res;
    throw new NativeLoadError(`${addon} loads but computes [1 2]·[3 4]ᵀ = ${res.matmul}, not 11: the library and the addon disagree (ABI).`);
  }
  const ldd = await run('ldd', [addon]);
  const unresolved = ldd.stdout.split('\n').filter((l) => l.includes('not found'));
  throw new NativeLoadError(
    `${addon} does not load (${r.signal !== null ? `crashed with ${r.signal}` : `exit ${r.code}`}) — command: node --input-type=module -e "<import ${pkg}; setBackend('tensorflow')>" in ${root}:\n` +
      `${tail(r.stderr + r.stdout, 12)}${unresolved.length > 0 ? `\nldd: ${unresolved.join('; ')}` : ''}`,
  );
}
