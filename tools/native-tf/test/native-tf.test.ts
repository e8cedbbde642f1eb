import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LINK_NAMES,
  MissingSymbolsError,
  NativeBuildError,
  NativeLoadError,
  NativeTfError,
  PINNED_TF_VERSION,
  ToolMissingError,
  WheelLayoutError,
  WheelNotFoundError,
  addonPath,
  bindingSources,
  buildAddon,
  buildNativeTf,
  checkSymbols,
  downloadWheel,
  exportedSymbols,
  extractWheel,
  findNodeDir,
  findNodeGyp,
  findWheel,
  fromInstalled,
  layoutDeps,
  parseNm,
  parseWheelName,
  pipPackage,
  requiredSymbols,
  resolvePackage,
  smokeTest,
  undefinedTfSymbols,
} from '../mod.ts';
import { run, tail } from '../src/exec.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const hasCc = spawnSync('cc', ['--version']).status === 0;

function tmp(t: { teardown: (fn: () => void) => void }, under = tmpdir()): string {
  const d = mkdtempSync(join(under, '.native-tf-test-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A shared library exporting the given functions (and calling `calls`, left undefined). */
function sharedLib(dir: string, name: string, exports: readonly string[], calls: readonly string[] = []): string {
  const c = join(dir, `${name}.c`);
  const body = [...calls.map((s) => `extern void ${s}(void);`), ...exports.map((s) => `void ${s}(void) {}`), `void use_them(void) { ${calls.map((s) => `${s}();`).join(' ')} }`];
  writeFileSync(c, body.join('\n'));
  const so = join(dir, name);
  const r = spawnSync('cc', ['-shared', '-fPIC', '-o', so, c]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return so;
}

/** A wheel-shaped zip holding the given files. */
function wheel(dir: string, name: string, files: Record<string, string>): string {
  const file = join(dir, name);
  const py = `import os, sys, zipfile, json\nz = zipfile.ZipFile(sys.argv[1], 'w')\nfor k, v in json.loads(sys.argv[2]).items():\n    z.write(v, k) if os.path.isfile(v) else z.writestr(k, v)\nz.close()`;
  const r = spawnSync('python3', ['-c', py, file, JSON.stringify(files)]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return file;
}

const HEADERS = { 'tensorflow/include/tensorflow/c/c_api.h': '// c api', 'tensorflow/include/tensorflow/c/eager/c_api.h': '// eager' };

t.test('the addon calls are found in its sources, less its own classes and the inline TString helpers', async (t) => {
  const src = 'class TF_AutoStatus { TF_Status* s = TF_NewStatus(); };\nTFE_Execute(op, h, &n, s);\nTF_TString_Init(&x); if (TF_GetCode(s) != TF_OK) {}\nTF_AutoStatus(x);';
  t.same(requiredSymbols([src]), ['TFE_Execute', 'TF_GetCode', 'TF_NewStatus']);
  const real = requiredSymbols(bindingSources(resolvePackage(root).dir));
  for (const s of ['TFE_Execute', 'TFE_NewContext', 'TF_SessionRun', 'TF_LoadSessionFromSavedModel', 'TF_Version']) t.ok(real.includes(s), s);
  t.notOk(real.some((s) => s.startsWith('TF_TString_') || s.startsWith('TF_Auto')));
  t.ok(real.length >= 50, `${real.length} symbols`);
});

t.test('nm output: names with version suffixes stripped; missing symbols are listed', async (t) => {
  t.same(parseNm('0000000008483b00 T TF_SessionRun@@tensorflow\n                 U malloc@GLIBC_2.2.5\n\n0000 W TFE_Execute\n'), ['TF_SessionRun', 'malloc', 'TFE_Execute']);
  checkSymbols(['A', 'B'], new Set(['A', 'B', 'C']), ['lib.so']);
  const err = t.throws(() => checkSymbols(['TFE_NewOp', 'A', 'TF_Zed'], new Set(['A']), ['x.so', 'y.so'])) as MissingSymbolsError;
  t.ok(err instanceof MissingSymbolsError);
  t.same(err.missing, ['TFE_NewOp', 'TF_Zed']);
  t.match(err.message, /2 symbol\(s\) .* not exported .* by x\.so \+ y\.so: TFE_NewOp, TF_Zed/);
});

t.test('nm -D on real shared libraries', { skip: hasCc ? false : 'no C compiler' }, async (t) => {
  const d = tmp(t);
  const lib = sharedLib(d, 'libx.so', ['TF_NewStatus', 'TFE_Execute'], ['TF_Missing']);
  const exported = await exportedSymbols([lib]);
  t.ok(exported.has('TF_NewStatus') && exported.has('TFE_Execute'));
  t.same(await undefinedTfSymbols(lib), ['TF_Missing']);
  await t.rejects(exportedSymbols([lib], join(d, 'no-nm')), ToolMissingError);
  await t.rejects(exportedSymbols([join(d, 'absent.so')]), /failed/);
});

t.test('wheels: names, lookup in a directory, package per variant', async (t) => {
  t.same(parseWheelName('/c/tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.whl'), { version: '2.15.1', variant: 'cpu' });
  t.same(parseWheelName('tensorflow-2.15.1-cp310-cp310-manylinux_2_17_x86_64.whl'), { version: '2.15.1', variant: 'and-cuda' });
  t.throws(() => parseWheelName('numpy-1.0-cp311.whl'), WheelLayoutError);
  t.equal(pipPackage('cpu'), 'tensorflow-cpu');
  t.equal(pipPackage('and-cuda'), 'tensorflow');
  const d = tmp(t);
  t.equal(findWheel(join(d, 'none'), 'tensorflow-cpu', '2.15.1'), undefined);
  writeFileSync(join(d, 'tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl'), '');
  writeFileSync(join(d, 'tensorflow_cpu-2.15.1-cp311-cp311-macosx_10_15_x86_64.whl'), '');
  t.match(findWheel(d, 'tensorflow-cpu', '2.15.1'), /manylinux2014_x86_64\.whl$/);
  t.equal(findWheel(d, 'tensorflow-cpu', '2.16.1'), undefined);
  t.equal(PINNED_TF_VERSION, '2.15.1');
});

t.test('unpacking a wheel: libraries and headers, reused once complete; a pre-2.12 layout is refused', async (t) => {
  const d = tmp(t);
  const good = wheel(d, 'tensorflow_cpu-9.9.9-cp311-cp311-manylinux_2_17_x86_64.whl', {
    'tensorflow/libtensorflow_cc.so.2': 'cc',
    'tensorflow/libtensorflow_framework.so.2': 'fw',
    'tensorflow/python/other.py': 'not wanted',
    ...HEADERS,
  });
  const lines: string[] = [];
  const src = await extractWheel(good, join(d, 'out'), { log: (l) => lines.push(l) });
  t.equal(src.version, '9.9.9');
  t.equal(readFileSync(join(src.libDir, 'libtensorflow_cc.so.2'), 'utf8'), 'cc');
  t.ok(existsSync(join(src.includeDir, 'tensorflow/c/eager/c_api.h')));
  t.notOk(existsSync(join(d, 'out', 'tensorflow/python/other.py')), 'only what the addon needs');
  await extractWheel(good, join(d, 'out'), { log: (l) => lines.push(l) });
  t.match(lines[lines.length - 1], /^reusing/);
  const old = wheel(d, 'tensorflow_cpu-2.9.1-cp310-cp310-manylinux_2_17_x86_64.whl', {
    'tensorflow/libtensorflow_framework.so.2': 'fw',
    'tensorflow/python/_pywrap_tensorflow_internal.so': 'x',
    ...HEADERS,
  });
  await t.rejects(extractWheel(old, join(d, 'old')), { name: 'WheelLayoutError', message: /lacks libtensorflow_cc\.so\.2 .*before 2\.12/ });
  await t.rejects(extractWheel(join(d, 'tensorflow_cpu-1.0.0-x.whl'), join(d, 'x')), WheelNotFoundError);
  writeFileSync(join(d, 'tensorflow_cpu-3.0.0-broken.whl'), 'not a zip');
  await t.rejects(extractWheel(join(d, 'tensorflow_cpu-3.0.0-broken.whl'), join(d, 'y')), /could not unpack/);
  await t.rejects(extractWheel(good, join(d, 'z'), { python: join(d, 'no-python') }), ToolMissingError);
});

t.test('an installed TensorFlow: package or site-packages directory, version from dist-info', async (t) => {
  const site = tmp(t);
  const pkg = join(site, 'tensorflow');
  mkdirSync(join(pkg, 'include/tensorflow/c/eager'), { recursive: true });
  for (const f of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2', 'include/tensorflow/c/c_api.h', 'include/tensorflow/c/eager/c_api.h']) writeFileSync(join(pkg, f), '');
  t.match(fromInstalled(pkg), { version: 'unknown', variant: 'cpu', libDir: pkg });
  mkdirSync(join(site, 'tensorflow-2.15.1.dist-info'));
  t.match(fromInstalled(site), { version: '2.15.1', variant: 'and-cuda', libDir: pkg, includeDir: join(pkg, 'include') });
  t.throws(() => fromInstalled(join(site, 'nothing')), WheelLayoutError);
});

t.test('pip download failures say what to do', async (t) => {
  const d = tmp(t);
  const fakePy = join(d, 'python3');
  writeFileSync(fakePy, '#!/bin/sh\necho "ERROR: No matching distribution found for tensorflow-cpu==0.0.1" >&2\nexit 1\n');
  chmodSync(fakePy, 0o755);
  const lines: string[] = [];
  await t.rejects(downloadWheel({ pkg: 'tensorflow-cpu', version: '0.0.1', dir: join(d, 'w'), python: fakePy, log: (l) => lines.push(l) }), {
    name: 'WheelNotFoundError',
    message: /pip could not download tensorflow-cpu==0\.0\.1 .*\n.*No matching distribution.*\n.*--wheel FILE/,
  });
  t.match(lines.join('\n'), /pip: ERROR/);
  await t.rejects(downloadWheel({ pkg: 'tensorflow-cpu', version: '0.0.1', dir: join(d, 'w'), python: join(d, 'none') }), ToolMissingError);
});

t.test("deps/ laid out as tfjs-node's install script would", async (t) => {
  const d = tmp(t);
  const src = { version: '2.15.1', variant: 'cpu' as const, libDir: join(d, 'tf'), includeDir: join(d, 'tf/include'), origin: 'w.whl' };
  const deps = layoutDeps(join(d, 'pkg'), src);
  t.equal(readlinkSync(join(deps, 'include')), src.includeDir);
  t.equal(readlinkSync(join(deps, 'lib/libtensorflow_cc.so.2')), join(src.libDir, 'libtensorflow_cc.so.2'));
  for (const [name, target] of Object.entries(LINK_NAMES)) t.equal(readlinkSync(join(deps, 'lib', name)), target);
  t.match(JSON.parse(readFileSync(join(deps, 'native-tf.json'), 'utf8')), { tensorflow: '2.15.1', from: 'w.whl' });
  layoutDeps(join(d, 'pkg'), src); // again: replaces, no EEXIST
});

t.test('node headers and node-gyp are found locally, never downloaded', async (t) => {
  const d = tmp(t);
  t.throws(() => findNodeDir(d), { name: 'ToolMissingError', message: /no Node headers .*--nodedir/ });
  const found = findNodeDir();
  t.ok(existsSync(join(found, 'include/node/node_api.h')), found);
  t.equal(findNodeDir(found), found);
  t.type(findNodeGyp(), 'string');
});

t.test('a failing node-gyp is a NativeBuildError with the log', async (t) => {
  // Inside the repository so that @mapbox/node-pre-gyp resolves, as for the real package.
  const pkgDir = tmp(t, here);
  writeFileSync(
    join(pkgDir, 'package.json'),
    JSON.stringify({
      name: 'fake',
      version: '1.0.0',
      main: 'index.js',
      binary: {
        host: 'https://example.invalid/',
        remote_path: './napi-v{napi_build_version}/{version}/',
        module_name: 'tfjs_binding',
        module_path: './lib/napi-v{napi_build_version}',
        napi_versions: [3, 8],
      },
    }),
  );
  t.match(addonPath(pkgDir), { file: /lib\/napi-v\d+\/tfjs_binding\.node$/ });
  const gyp = join(pkgDir, 'gyp.js');
  writeFileSync(gyp, "console.log('  CXX(target) x.o'); console.error('x.cc:1: error: boom'); console.error('gyp ERR! build error'); process.exit(1);");
  const lines: string[] = [];
  const err = (await buildAddon({ pkgDir, nodedir: '/usr', logFile: join(pkgDir, 'logs/b.log'), nodeGyp: gyp, log: (l) => lines.push(l) }).catch((e: unknown) => e)) as NativeBuildError;
  t.ok(err instanceof NativeBuildError);
  t.match(err.tail, /error: boom/);
  t.match(readFileSync(err.logPath, 'utf8'), /gyp ERR! build error/);
  t.match(lines.join('\n'), /CXX\(target\)/);
});

t.test('the smoke test reports a package that does not load', async (t) => {
  await t.rejects(smokeTest('@actorflow/no-such-package', root, '/nonexistent/tfjs_binding.node'), { name: 'NativeLoadError', message: /does not load \(exit 1\)/ });
  t.ok(new NativeLoadError('x') instanceof NativeTfError);
});

t.test('the whole route up to the symbol check, on a wheel of stand-in libraries', { skip: hasCc ? false : 'no C compiler' }, async (t) => {
  const d = tmp(t);
  const required = requiredSymbols(bindingSources(resolvePackage(root).dir));
  const full = sharedLib(d, 'libtensorflow_cc.so.2', required);
  const fw = sharedLib(d, 'libtensorflow_framework.so.2', ['TF_Other']);
  const ok = wheel(d, 'tensorflow_cpu-9.9.9-cp311-cp311-manylinux_2_17_x86_64.whl', { 'tensorflow/libtensorflow_cc.so.2': full, 'tensorflow/libtensorflow_framework.so.2': fw, ...HEADERS });
  const lines: string[] = [];
  const res = await buildNativeTf({ wheel: ok, checkOnly: true, cacheDir: join(d, 'cache'), root, log: (l) => lines.push(l) });
  t.same(res.requiredSymbols, required);
  t.equal(res.addon, undefined);
  t.match(lines.join('\n'), /all \d+ TF_\/TFE_ functions the addon calls are exported/);

  const partial = sharedLib(
    d,
    'partial',
    required.filter((s) => s !== 'TFE_NewOp' && s !== 'TF_SessionRun'),
  );
  const bad = wheel(d, 'tensorflow_cpu-9.9.8-cp311-cp311-manylinux_2_17_x86_64.whl', { 'tensorflow/libtensorflow_cc.so.2': partial, 'tensorflow/libtensorflow_framework.so.2': fw, ...HEADERS });
  const err = (await buildNativeTf({ wheel: bad, checkOnly: true, cacheDir: join(d, 'cache'), root }).catch((e: unknown) => e)) as MissingSymbolsError;
  t.ok(err instanceof MissingSymbolsError);
  t.same(err.missing, ['TFE_NewOp', 'TF_SessionRun']);

  // From the cache's wheels/ directory by version; with --no-download a missing one is an error.
  mkdirSync(join(d, 'cache/wheels'), { recursive: true });
  writeFileSync(join(d, 'cache/wheels', 'tensorflow_cpu-9.9.9-cp311-cp311-manylinux_2_17_x86_64.whl'), readFileSync(ok));
  t.match(await buildNativeTf({ version: '9.9.9', checkOnly: true, cacheDir: join(d, 'cache'), root, noDownload: true }), { source: { version: '9.9.9' } });
  await t.rejects(buildNativeTf({ version: '9.9.7', checkOnly: true, cacheDir: join(d, 'cache'), root, noDownload: true }), { name: 'WheelNotFoundError', message: /--no-download/ });
  const site = join(d, 'unpacked');
  await extractWheel(ok, site);
  t.match(await buildNativeTf({ tfDir: join(site, 'tensorflow'), checkOnly: true, root }), { package: /tfjs-node/ });
});

t.test('a tree without tfjs-node says to npm install', async (t) => {
  t.throws(() => resolvePackage(tmp(t)), { name: 'NativeTfError', message: /not installed .*npm install/ });
  t.throws(() => resolvePackage(root, '@tensorflow/tfjs-node-gpu'), /tfjs-node-gpu is not installed/);
});

t.test('the built addon, where it is built, loads and computes', { skip: existsSync(addonPath(resolvePackage(root).dir).file) ? false : 'addon not built (npm run native:from-python)' }, async (t) => {
  const { pkg, dir } = resolvePackage(root);
  const res = await smokeTest(pkg, root, addonPath(dir).file);
  t.equal(res.matmul, 11);
  t.match(res.tensorflow, /^\d+\.\d+\.\d+/);
});

t.test('process helpers', async (t) => {
  t.match(await run('definitely-not-a-command-xyz', []), { code: null, stderr: /ENOENT/ });
  t.equal(tail('a\n\nb\nc\n', 2), 'b\nc');
  t.ok(new ToolMissingError('x') instanceof NativeTfError);
});
