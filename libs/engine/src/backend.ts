// The compute engine seam: one place picks the TF.js backend, in the order
// tensorflow (native: tfjs-node-gpu, then tfjs-node) → wasm → cpu, unless --backend says which.
// The choice is logged and reported (train.loss carries it). Native bindings load only if
// installed; their absence is a logged reason, not an error, unless they were asked for.
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
}

export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

async function tryNative(): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (await tf.setBackend('tensorflow')) return undefined;
    } catch (err) {
      const msg = (err as Error).message.split('\n')[0];
      if (pkg === '@tensorflow/tfjs-node') return `neither tfjs-node-gpu nor tfjs-node loads (${msg})`;
    }
  }
  return 'the tensorflow backend did not initialise';
}

async function tryWasm(): Promise<string | undefined> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm binaries are read from the package's dist directory.
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
    if (await tf.setBackend('wasm')) return undefined;
    return 'the wasm backend did not initialise';
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm does not load (${(err as Error).message.split('\n')[0]})`;
  }
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
    const reason = name === 'tensorflow' ? await tryNative() : name === 'wasm' ? await tryWasm() : (await tf.setBackend('cpu')) ? undefined : 'cpu did not initialise';
    if (reason === undefined) {
      await tf.ready();
      log(`TF.js backend: ${name}${skipped.length > 0 ? ` (skipped: ${skipped.join('; ')})` : ''}`);
      return { name, tf, skipped };
    }
    if (wanted !== undefined) throw new BackendUnavailableError(name, reason);
    skipped.push(`${name}: ${reason}`);
  }
  throw new BackendUnavailableError('any', skipped.join('; '));
}
