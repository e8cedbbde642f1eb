// Element-wise reductions over ranks' tensors, in rank order (so every run gets the same bits).
import { CollectiveError } from './errors.ts';

/** The reduction of an all-reduce or reduce, as torch.distributed.ReduceOp. */
export const ReduceOp = {
  SUM: 'sum',
  /** The sum divided by the world size (computed as the sum, then one division). */
  AVG: 'avg',
  MIN: 'min',
  MAX: 'max',
  PRODUCT: 'product',
} as const;
export type ReduceOp = (typeof ReduceOp)[keyof typeof ReduceOp];

const OPS: ReadonlySet<string> = new Set(Object.values(ReduceOp));

export function assertReduceOp(op: unknown, where: string): asserts op is ReduceOp {
  if (typeof op !== 'string' || !OPS.has(op)) throw new CollectiveError(`${where}: unknown ReduceOp '${String(op)}' (use one of ${[...OPS].join(', ')})`);
}

/**
 * Reduces parts[0] … parts[W-1] element-wise, left to right in rank order, rounding to float32 at
 * every step (SUM starts from +0, so its bits are exactly those of adding the ranks in turn).
 */
export function reduceInRankOrder(parts: readonly Float32Array[], op: ReduceOp, where = 'allReduce'): Float32Array {
  if (parts.length === 0) throw new CollectiveError(`${where}: nothing to reduce`);
  const n = parts[0].length;
  for (const p of parts) {
    if (p.length !== n) throw new CollectiveError(`${where}: ranks passed tensors of different lengths (${p.length} vs ${n})`);
  }
  const out = new Float32Array(n);
  switch (op) {
    case 'sum':
    case 'avg':
      for (const v of parts) for (let i = 0; i < n; i++) out[i] = Math.fround(out[i] + v[i]);
      if (op === 'avg') for (let i = 0; i < n; i++) out[i] = Math.fround(out[i] / parts.length);
      return out;
    case 'product':
      out.set(parts[0]);
      for (let r = 1; r < parts.length; r++) for (let i = 0; i < n; i++) out[i] = Math.fround(out[i] * parts[r][i]);
      return out;
    case 'min':
    case 'max': {
      out.set(parts[0]);
      const pick = op === 'min' ? Math.min : Math.max;
      for (let r = 1; r < parts.length; r++) for (let i = 0; i < n; i++) out[i] = pick(out[i], parts[r][i]);
      return out;
    }
  }
}

/** A float32 view of bytes (copied when unaligned, so any received buffer works). */
export function asFloat32(b: Uint8Array): Float32Array {
  if (b.byteLength % 4 !== 0) throw new CollectiveError(`a tensor of ${b.byteLength} bytes is not float32 data`);
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function bytesOf(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}
