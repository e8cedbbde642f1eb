// Where libtensorflow comes from: a TensorFlow wheel (downloaded with pip, or given) unpacked into
// the cache, or an installed TensorFlow package directory.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ToolMissingError, WheelLayoutError, WheelNotFoundError } from './errors.ts';
import { run, tail } from './exec.ts';

/**
 * The TensorFlow version this tool builds against by default. Why 2.15.1:
 * - wheels before 2.12 have no libtensorflow_cc.so.2: their C API lives in
 *   _pywrap_tensorflow_internal.so, which leaves ~180 libpython symbols undefined (2.9.1 checked);
 * - 2.15 is the first release whose tensorflow[and-cuda] targets CUDA 12 (12.2, cuDNN 8.9);
 * - its libtensorflow_cc.so.2 + libtensorflow_framework.so.2 export every TF_/TFE_ function
 *   tfjs-node 4.22's addon calls (checked with nm -D), and the addon builds against its headers.
 */
export const PINNED_TF_VERSION = '2.15.1';

/** cpu: the tensorflow-cpu wheel; and-cuda: the tensorflow wheel (CUDA kernels; CUDA libraries from pip's nvidia-* packages). */
export type Variant = 'cpu' | 'and-cuda';

export const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'] as const;
const HEADERS = ['tensorflow/c/c_api.h', 'tensorflow/c/eager/c_api.h'];

/** An unpacked libtensorflow: both libraries in libDir, the C API headers under includeDir. */
export interface TfSource {
  readonly version: string;
  readonly variant: Variant;
  readonly libDir: string;
  readonly includeDir: string;
  /** Where it came from (wheel file or package directory), for messages. */
  readonly origin: string;
}

export function pipPackage(variant: Variant): string {
  return variant === 'cpu' ? 'tensorflow-cpu' : 'tensorflow';
}

/** The wheel for `pkg==version` in dir, if one is there (any CPython tag, manylinux x86_64). */
export function findWheel(dir: string, pkg: string, version: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const prefix = `${pkg.replaceAll('-', '_')}-${version}-`;
  const hit = readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.whl') && f.includes('manylinux') && f.includes('x86_64'))
    .sort();
  return hit.length > 0 ? join(dir, hit[hit.length - 1]) : undefined;
}

/** Version and variant from a wheel's file name (tensorflow_cpu-2.15.1-cp311-...whl). */
export function parseWheelName(file: string): { version: string; variant: Variant } {
  const m = /^(tensorflow(?:_cpu)?)-([0-9][^-]*)-/.exec(basename(file));
  if (m === null) throw new WheelLayoutError(`${file}: not a tensorflow or tensorflow-cpu wheel name (expected tensorflow[_cpu]-X.Y.Z-….whl)`);
  return { version: m[2], variant: m[1] === 'tensorflow_cpu' ? 'cpu' : 'and-cuda' };
}

export interface DownloadOptions {
  readonly pkg: string;
  readonly version: string;
  readonly dir: string;
  readonly python?: string;
  readonly log?: (line: string) => void;
}

/**
 * Downloads the wheel with pip (no dependencies; binary only; for manylinux x86_64, whatever the
 * local Python: only the shared libraries and headers are used, never the Python module).
 */
export async function downloadWheel(opts: DownloadOptions): Promise<string> {
  const python = opts.python ?? 'python3';
  mkdirSync(opts.dir, { recursive: true });
  const spec = `${opts.pkg}==${opts.version}`;
  opts.log?.(`downloading ${spec} with pip into ${opts.dir} (about 200 MB)`);
  const args = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--python-version', '3.11', '--platform', 'manylinux2014_x86_64', '--progress-bar', 'off', '-d', opts.dir, spec];
  const r = await run(python, args, { onLine: (l) => opts.log?.(`  pip: ${l}`) });
  if (r.code === null && /ENOENT/.test(r.stderr)) {
    throw new ToolMissingError(`${python} not found: pip is needed to download ${spec}. Install python3-pip, or pass --wheel FILE / --tf-dir DIR.`);
  }
  const wheel = findWheel(opts.dir, opts.pkg, opts.version);
  if (r.code !== 0 || wheel === undefined) {
    throw new WheelNotFoundError(
      `pip could not download ${spec} into ${opts.dir} (exit ${r.code}):\n${tail(r.stderr + r.stdout, 8)}\n` +
        `Put the wheel there yourself (pip download --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 ${spec}), or pass --wheel FILE or --tf-dir DIR.`,
    );
  }
  return wheel;
}

/** Checks that a directory holds both libraries and the C API headers. */
export function checkLayout(libDir: string, includeDir: string, origin: string): void {
  const missing = [...LIBRARIES.map((l) => join(libDir, l)), ...HEADERS.map((h) => join(includeDir, h))].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new WheelLayoutError(
      `${origin} lacks ${missing.map((p) => basename(p)).join(', ')} (looked for ${missing.join(', ')}). ` +
        `TensorFlow wheels before 2.12 have no libtensorflow_cc.so.2 (their C API is inside _pywrap_tensorflow_internal.so, which needs libpython); use ${PINNED_TF_VERSION}.`,
    );
  }
}

const EXTRACT_PY = `
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
wanted = ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2')
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n in wanted or (n.startswith('tensorflow/include/') and not n.endswith('/'))]
    for i, n in enumerate(names):
        z.extract(n, dest)
        if i % 2000 == 0: print(f'{i}/{len(names)} files', flush=True)
    print(f'{len(names)}/{len(names)} files', flush=True)
`;

/**
 * Unpacks the two libraries and the headers of a wheel into dest (reused when a previous unpack
 * of the same wheel completed). Uses Python's zipfile, so no unzip is needed.
 */
export async function extractWheel(wheel: string, dest: string, opts: { python?: string; log?: (line: string) => void } = {}): Promise<TfSource> {
  if (!existsSync(wheel)) throw new WheelNotFoundError(`${wheel}: no such wheel. Download one (see --help) or pass --tf-dir DIR.`);
  const { version, variant } = parseWheelName(wheel);
  const marker = join(dest, '.complete');
  const libDir = join(dest, 'tensorflow');
  const includeDir = join(libDir, 'include');
  if (!(existsSync(marker) && readFileSync(marker, 'utf8') === basename(wheel))) {
    rmSync(dest, { recursive: true, force: true });
    mkdirSync(dest, { recursive: true });
    opts.log?.(`unpacking ${basename(wheel)} (libraries and headers) into ${dest}`);
    const python = opts.python ?? 'python3';
    const r = await run(python, ['-c', EXTRACT_PY, wheel, dest], { onLine: (l) => opts.log?.(`  unpack: ${l}`) });
    if (r.code !== 0) {
      if (r.code === null && /ENOENT/.test(r.stderr)) throw new ToolMissingError(`${python} not found: it unpacks the wheel. Install python3.`);
      throw new WheelLayoutError(`${wheel}: could not unpack (exit ${r.code}):\n${tail(r.stderr, 8)}`);
    }
    checkLayout(libDir, includeDir, wheel);
    writeFileSync(marker, basename(wheel));
  } else {
    opts.log?.(`reusing ${dest} (unpacked from ${basename(wheel)})`);
  }
  return { version, variant, libDir, includeDir, origin: wheel };
}

/**
 * An installed TensorFlow: dir is its package directory (…/site-packages/tensorflow) or the
 * site-packages directory holding it. Version and variant come from the sibling *.dist-info.
 */
export function fromInstalled(dir: string): TfSource {
  const pkgDir = existsSync(join(dir, 'tensorflow', LIBRARIES[0])) ? join(dir, 'tensorflow') : dir;
  const includeDir = join(pkgDir, 'include');
  checkLayout(pkgDir, includeDir, pkgDir);
  const site = dirname(pkgDir);
  const info = existsSync(site) ? readdirSync(site).find((f) => /^tensorflow(_cpu)?-[0-9][^-]*\.dist-info$/.test(f)) : undefined;
  const m = info === undefined ? null : /^tensorflow(_cpu)?-([^-]+)\.dist-info$/.exec(info);
  return {
    version: m?.[2] ?? 'unknown',
    variant: m === null || m[1] === '_cpu' ? 'cpu' : 'and-cuda',
    libDir: pkgDir,
    includeDir,
    origin: pkgDir,
  };
}
