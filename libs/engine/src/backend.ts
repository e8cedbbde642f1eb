// The compute engine seam: one place picks the TF.js backend, in the order
// tensorflow (native: tfjs-node-gpu, then tfjs-node) → wasm → cpu, unless --backend says which.
// The choice is logged and reported (train.loss carries it). Native bindings load only if
// installed and built (tfjs-node's addon is built by `npm run native:from-python`, against the
// libtensorflow of a TensorFlow wheel); their absence is a logged reason, not an error, unless
// they were asked for.
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type Tf = typeof tf;

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: string,
    reason: string,
  ) {
    super(`TF.js backend '${backend}' is not available here: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

export interface Engine {
  readonly name: BackendName;
  readonly tf: Tf;
  /** Why faster backends were passed over (for the log). */
  readonly skipped: readonly string[];
  /** What runs underneath, e.g. "TensorFlow 2.15.1 (CPU) via @tensorflow/tfjs-node", "wasm (simd, 2 threads)". */
  readonly detail: string;
}

export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** The native packages, in the order they are tried. */
export const NATIVE_PACKAGES: readonly string[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

const BUILD_HINT = 'run `npm run native:from-python` to build it against a TensorFlow wheel';

interface Probe {
  readonly reason?: string;
  readonly detail?: string;
}

interface NativeBackend {
  readonly binding?: { readonly TF_Version?: string };
  readonly isUsingGpuDevice?: boolean;
}

/** Why a native package did not load, in one line that says what to do. */
export function nativeReason(pkg: string, err: unknown): string {
  const e = err as { code?: string; message?: string };
  const msg = (e.message ?? String(err)).split('\n')[0];
  if ((/MODULE_NOT_FOUND/.test(e.code ?? '') || /^Cannot find (package|module)/.test(msg)) && msg.includes(`'${pkg}`)) return `${pkg} is not installed`;
  if (msg.includes('tfjs_binding.node') && msg.includes('can not be found')) return `${pkg} is installed but its addon is not built (${BUILD_HINT})`;
  return `${pkg} does not load (${msg}; ${BUILD_HINT})`;
}

/**
 * Tries the native packages in order; the first that loads and initialises wins. Exported (through
 * internal_mod.ts) so tests can probe package names that do not exist.
 */
export async function probeNative(packages: readonly string[] = NATIVE_PACKAGES): Promise<Probe> {
  // TensorFlow's C++ logging (CPU feature notes) would otherwise go to every actor's stderr.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  const reasons: string[] = [];
  for (const pkg of packages) {
    try {
      await import(pkg);
    } catch (err) {
      reasons.push(nativeReason(pkg, err));
      continue;
    }
    if (tf.findBackendFactory('tensorflow') !== undefined && (await tf.setBackend('tensorflow'))) {
      const b = tf.backend() as unknown as NativeBackend;
      return { detail: `TensorFlow ${b.binding?.TF_Version ?? '?'} (${b.isUsingGpuDevice === true ? 'GPU' : 'CPU'}) via ${pkg}` };
    }
    reasons.push(`${pkg} loads but the tensorflow backend did not initialise`);
  }
  return { reason: reasons.join('; ') };
}

async function probeWasm(): Promise<Probe> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm binaries are read from the package's dist directory.
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
    if (await tf.setBackend('wasm')) return { detail: 'wasm' };
    return { reason: 'the wasm backend did not initialise' };
  } catch (err) {
    return { reason: `@tensorflow/tfjs-backend-wasm does not load (${(err as Error).message.split('\n')[0]})` };
  }
}

async function probe(name: BackendName): Promise<Probe> {
  if (name === 'tensorflow') return probeNative();
  if (name === 'wasm') return probeWasm();
  return (await tf.setBackend('cpu')) ? { detail: 'cpu (plain JavaScript)' } : { reason: 'cpu did not initialise' };
}

/** Selects the backend (explicit, or the best that loads) and waits until it is ready. */
export async function selectBackend(opts: { backend?: string; log?: (line: string) => void } = {}): Promise<Engine> {
  const log = opts.log ?? (() => undefined);
  const wanted = opts.backend;
  if (wanted !== undefined && !BACKENDS.includes(wanted as BackendName)) {
    throw new BackendUnavailableError(wanted, `unknown backend; choose one of ${BACKENDS.join(', ')}`);
  }
  const order = wanted !== undefined ? [wanted as BackendName] : BACKENDS;
  const skipped: string[] = [];
  for (const name of order) {
    const { reason, detail } = await probe(name);
    if (reason === undefined) {
      await tf.ready();
      const d = detail ?? name;
      log(`TF.js backend: ${name}${d !== name ? ` — ${d}` : ''}${skipped.length > 0 ? ` (skipped: ${skipped.join('; ')})` : ''}`);
      return { name, tf, skipped, detail: d };
    }
    if (wanted !== undefined) throw new BackendUnavailableError(name, reason);
    skipped.push(`${name}: ${reason}`);
  }
  throw new BackendUnavailableError('any', skipped.join('; '));
}

let available: Promise<BackendName[]> | undefined;

/**
 * Every backend that initialises here, fastest first (probed once per process). Tests loop over
 * it so each model runs on the native backend wherever it is built, as well as on wasm and cpu.
 * The current backend is left as it was.
 */
export function availableBackends(): Promise<BackendName[]> {
  available ??= (async () => {
    const before = tf.getBackend() as string | undefined;
    const names: BackendName[] = [];
    for (const name of BACKENDS) if ((await probe(name)).reason === undefined) names.push(name);
    if (before !== undefined && before !== tf.getBackend()) await tf.setBackend(before);
    return names;
  })();
  return available;
}
