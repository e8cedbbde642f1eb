// Reading tensors back into typed arrays. Never return typed arrays (or objects holding them) from
// `tf.tidy`: tidy walks its return value looking for tensors to keep, and walks a typed array
// element by element through a Set (`walkTensorContainer`) — measured at 11.2 s of a 13.7 s MF
// epoch (docs/BENCHMARKS.md). `readTidy` returns tensors from the tidy (kept, cheap to walk), reads
// them outside it, and disposes them. tests/tidy-guard.test.ts keeps every tidy callback in the
// repository free of reads.
import type { Tensor } from '@tensorflow/tfjs';
import type { Tf } from './backend.ts';

/** Runs `f` under `tf.tidy`, then reads its result tensor(s) as float32 arrays and disposes them. */
export function readTidy(tf: Tf, f: () => Tensor): Float32Array;
export function readTidy(tf: Tf, f: () => readonly Tensor[]): Float32Array[];
export function readTidy(tf: Tf, f: () => Tensor | readonly Tensor[]): Float32Array | Float32Array[] {
  const out = tf.tidy(f as () => Tensor | Tensor[]);
  try {
    return Array.isArray(out) ? out.map(asFloat32) : asFloat32(out as Tensor);
  } finally {
    tf.dispose(out);
  }
}

function asFloat32(t: Tensor): Float32Array {
  const v = t.dataSync();
  // Copy: a backend may hand out a view of memory it reuses after dispose (wasm's heap).
  return v instanceof Float32Array ? v.slice() : Float32Array.from(v);
}
