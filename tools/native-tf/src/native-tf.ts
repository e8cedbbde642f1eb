// The whole route: wheel → unpacked libtensorflow → symbol check → tfjs-node deps/ → node-gyp
// build (or the cached one) → smoke test in a fresh process.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { NativeTfError, WheelNotFoundError } from './errors.ts';
import { addonPath, buildAddon, findNodeDir, installCachedAddon, layoutDeps, smokeTest, type SmokeResult } from './build.ts';
import { bindingSources, checkSymbols, exportedSymbols, requiredSymbols, undefinedTfSymbols } from './symbols.ts';
import { LIBRARIES, PINNED_TF_VERSION, downloadWheel, extractWheel, findWheel, fromInstalled, pipPackage, type TfSource, type Variant } from './wheel.ts';

export type TfjsPackage = '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu';

export interface NativeTfOptions {
  /** A wheel file to take libtensorflow from. */
  readonly wheel?: string;
  /** An installed TensorFlow (its package directory or the site-packages holding it). */
  readonly tfDir?: string;
  /** Version to find in the cache or download when neither wheel nor tfDir is given. */
  readonly version?: string;
  readonly variant?: Variant;
  /** Which tfjs package to build; default: tfjs-node-gpu if installed, else tfjs-node. */
  readonly package?: TfjsPackage;
  /** Default: $ACTORFLOW_CACHE, else ~/.cache/actorflow. */
  readonly cacheDir?: string;
  readonly nodedir?: string;
  /** Never call pip; a wheel missing from the cache is an error. */
  readonly noDownload?: boolean;
  /** Rebuild even if a cached build of the same combination exists. */
  readonly force?: boolean;
  /** Stop after the symbol check. */
  readonly checkOnly?: boolean;
  /** Where to resolve the tfjs packages from (default: the current directory). */
  readonly root?: string;
  readonly python?: string;
  readonly nm?: string;
  readonly log?: (line: string) => void;
}

export interface NativeTfResult {
  readonly source: TfSource;
  readonly package: TfjsPackage;
  readonly requiredSymbols: readonly string[];
  /** Undefined with checkOnly. */
  readonly addon?: string;
  readonly reusedBuild?: boolean;
  readonly smoke?: SmokeResult;
}

export function defaultCacheDir(): string {
  return process.env.ACTORFLOW_CACHE ?? join(homedir(), '.cache', 'actorflow');
}

/** The tfjs-node(-gpu) package directory, or an error saying to npm install. */
export function resolvePackage(root: string, wanted?: TfjsPackage): { pkg: TfjsPackage; dir: string; version: string } {
  const require = createRequire(join(resolve(root), 'package.json'));
  const order: TfjsPackage[] = wanted !== undefined ? [wanted] : ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
  for (const pkg of order) {
    try {
      const pj = require.resolve(`${pkg}/package.json`);
      return { pkg, dir: dirname(pj), version: (JSON.parse(readFileSync(pj, 'utf8')) as { version: string }).version };
    } catch {
      // try the next one
    }
  }
  throw new NativeTfError(`${order.join(' / ')} is not installed under ${resolve(root)}: run npm install (its own install script is denied in package.json "allowScripts"; this tool replaces it).`);
}

async function source(opts: NativeTfOptions, cacheDir: string, log: (l: string) => void): Promise<TfSource> {
  if (opts.tfDir !== undefined) return fromInstalled(opts.tfDir);
  let wheel = opts.wheel;
  if (wheel === undefined) {
    const variant = opts.variant ?? 'cpu';
    const version = opts.version ?? PINNED_TF_VERSION;
    const dir = join(cacheDir, 'wheels');
    wheel = findWheel(dir, pipPackage(variant), version);
    if (wheel === undefined) {
      if (opts.noDownload === true) {
        throw new WheelNotFoundError(`no ${pipPackage(variant)} ${version} wheel in ${dir} and --no-download was given: put one there, or pass --wheel FILE or --tf-dir DIR.`);
      }
      wheel = await downloadWheel({ pkg: pipPackage(variant), version, dir, python: opts.python, log });
    } else {
      log(`wheel: ${wheel}`);
    }
  }
  const name = wheel.replace(/^.*\//, '').replace(/\.whl$/, '');
  return extractWheel(wheel, join(cacheDir, 'native-tf', 'unpacked', name), { python: opts.python, log });
}

/** Runs the route; every failure is a NativeTfError subclass saying what to do. */
export async function buildNativeTf(opts: NativeTfOptions = {}): Promise<NativeTfResult> {
  const log = opts.log ?? (() => undefined);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const root = opts.root ?? process.cwd();
  const { pkg, dir: pkgDir, version: tfjsVersion } = resolvePackage(root, opts.package);
  log(`building ${pkg}@${tfjsVersion} (${pkgDir})`);

  const src = await source(opts, cacheDir, log);
  log(`libtensorflow: TensorFlow ${src.version} (${src.variant}) from ${src.origin}`);

  const required = requiredSymbols(bindingSources(pkgDir));
  const libs = LIBRARIES.map((l) => join(src.libDir, l));
  checkSymbols(required, await exportedSymbols(libs, opts.nm), libs);
  log(`symbols: all ${required.length} TF_/TFE_ functions the addon calls are exported by ${LIBRARIES.join(' + ')}`);
  if (opts.checkOnly === true) return { source: src, package: pkg, requiredSymbols: required };

  layoutDeps(pkgDir, src);
  const { napi } = addonPath(pkgDir);
  const key = `${pkg.replace('@tensorflow/', '')}-${tfjsVersion}_tf-${src.version}-${src.variant}_node${process.versions.node.split('.')[0]}_napi${napi}`;
  const cached = join(cacheDir, 'native-tf', 'addons', key, 'tfjs_binding.node');
  let addon: string;
  let reusedBuild = false;
  if (opts.force !== true && existsSync(cached) && src.version !== 'unknown') {
    addon = installCachedAddon(cached, pkgDir);
    reusedBuild = true;
    log(`reusing the cached build ${cached}`);
  } else {
    const nodedir = findNodeDir(opts.nodedir);
    addon = await buildAddon({ pkgDir, nodedir, logFile: join(cacheDir, 'native-tf', 'logs', `${key}.log`), log });
    mkdirSync(dirname(cached), { recursive: true });
    copyFileSync(addon, cached);
    log(`built ${addon} (cached as ${cached})`);
  }
  const undefinedTf = await undefinedTfSymbols(addon, opts.nm);
  checkSymbols(undefinedTf, await exportedSymbols(libs, opts.nm), libs);
  const smoke = await smokeTest(pkg, root, addon);
  log(`ok: ${pkg} runs on TensorFlow ${smoke.tensorflow} (${smoke.devices}); libs/engine will now select the 'tensorflow' backend`);
  return { source: src, package: pkg, requiredSymbols: required, addon, reusedBuild, smoke };
}
