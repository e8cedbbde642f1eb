// npm run native:from-python -- [--wheel FILE | --tf-dir DIR | --version X] [--variant cpu|and-cuda] …
// Builds tfjs-node's native addon against libtensorflow from a TensorFlow Python wheel.
import { parseArgs } from 'node:util';
import { NativeTfError, PINNED_TF_VERSION, buildNativeTf, defaultCacheDir, type TfjsPackage, type Variant } from './mod.ts';

const usage = `Usage: npm run native:from-python -- [options]   (or: npx nx run native-tf -- [options])

Takes libtensorflow from a TensorFlow wheel (PyPI) instead of Google storage, checks with nm -D that
it exports every TF_/TFE_ function tfjs-node's addon calls, lays out tfjs-node's deps/ and builds the
addon with node-gyp against the local Node headers; then loads it in a fresh process.

  --wheel FILE        a tensorflow-cpu / tensorflow wheel (manylinux x86_64)
  --tf-dir DIR        an installed TensorFlow (site-packages/tensorflow, or the site-packages)
  --version X         wheel version to take from the cache or download with pip (default ${PINNED_TF_VERSION})
  --variant V         cpu (tensorflow-cpu, default) or and-cuda (tensorflow: CUDA 12 kernels)
  --package P         @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu (default: whichever is installed, -gpu first)
  --cache-dir DIR     wheels, unpacked libraries and builds (default ${defaultCacheDir()})
  --nodedir DIR       Node headers for node-gyp (default: npm's nodedir, the running node's prefix, /usr)
  --no-download       never call pip
  --force             rebuild even if this combination was built before
  --check-only        stop after the symbol check`;

let parsed;
try {
  parsed = parseArgs({
    options: {
      wheel: { type: 'string' },
      'tf-dir': { type: 'string' },
      version: { type: 'string' },
      variant: { type: 'string' },
      package: { type: 'string' },
      'cache-dir': { type: 'string' },
      nodedir: { type: 'string' },
      'no-download': { type: 'boolean' },
      force: { type: 'boolean' },
      'check-only': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
} catch (err) {
  console.error(`native-tf: ${(err as Error).message}\n${usage}`);
  process.exit(2);
}
const v = parsed.values;
if (v.help === true) {
  console.log(usage);
  process.exit(0);
}
if (v.variant !== undefined && v.variant !== 'cpu' && v.variant !== 'and-cuda') {
  console.error(`native-tf: --variant must be cpu or and-cuda, not '${v.variant}'`);
  process.exit(2);
}
if (v.package !== undefined && v.package !== '@tensorflow/tfjs-node' && v.package !== '@tensorflow/tfjs-node-gpu') {
  console.error(`native-tf: --package must be @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu, not '${v.package}'`);
  process.exit(2);
}
const started = Date.now();
try {
  const res = await buildNativeTf({
    wheel: v.wheel,
    tfDir: v['tf-dir'],
    version: v.version,
    variant: v.variant as Variant | undefined,
    package: v.package as TfjsPackage | undefined,
    cacheDir: v['cache-dir'],
    nodedir: v.nodedir,
    noDownload: v['no-download'],
    force: v.force,
    checkOnly: v['check-only'],
    // npm run sets INIT_CWD to where it was called; packages resolve from the repository root.
    root: process.env.INIT_CWD ?? process.cwd(),
    log: (line) => console.error(`native-tf: ${line}`),
  });
  const what = res.smoke !== undefined ? `tensorflow backend ready (TensorFlow ${res.smoke.tensorflow}, ${res.smoke.devices})` : 'symbol check passed';
  console.log(`native-tf: ${what} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (err) {
  if (err instanceof NativeTfError) {
    console.error(`native-tf: FAILED (${err.name}): ${err.message}`);
    process.exit(1);
  }
  throw err;
}
