// Small building blocks shared by the neural models (AutoRec, Mult-VAE/DAE, MNIST): hyper-parameter
// parsing, activations, Glorot/He initialisers, per-example dropout masks, and the inputs of the
// embedding bags (x·V over a row's observed columns) that @actorflow/embeddings computes.
//
// Why sparse layers are not TF.js ops: the gradient of tf.gather over a table is dense over the
// whole table, and the wasm backend has no UnsortedSegmentSum at all. So the first layer of a model
// over sparse rows is a bag computed on typed arrays; its output becomes a TF.js input tensor, and
// the gradient TF.js returns for that tensor goes back into the touched rows with bagBackward.
import type { Tf } from '@actorflow/engine';
import { sortedIndexOf, type Initializer, type SparseGradient } from '@actorflow/embeddings';
import type { InteractionsBatch } from '@actorflow/data';
import { ModelError, type GatheredParams, type StepContext } from './model.ts';
import type { Hyper } from './registry.ts';

export const DEFAULT_CTX: StepContext = { seed: 0, epoch: 0, step: 0 };

type Tensor = ReturnType<Tf['tensor']>;

// ---- hyper-parameters --------------------------------------------------------------------------

export function hyperNum(model: string, h: Hyper, k: string): number {
  const v = h[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError(`${model}: hyper-parameter '${k}' must be a number, got ${String(v)}`);
  return v;
}

export function hyperInt(model: string, h: Hyper, k: string, min: number): number {
  const v = hyperNum(model, h, k);
  if (!Number.isInteger(v) || v < min) throw new ModelError(`${model}: hyper-parameter '${k}' must be an integer >= ${min}, got ${v}`);
  return v;
}

export function hyperStr<T extends string>(model: string, h: Hyper, k: string, allowed: readonly T[]): T {
  const v = h[k];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ModelError(`${model}: hyper-parameter '${k}' must be one of ${allowed.join(', ')}, got ${String(v)}`);
  }
  return v as T;
}

/** A comma-separated list of layer sizes ("600,200"); a number is a one-element list; "" is empty. */
export function hyperSizes(model: string, h: Hyper, k: string): number[] {
  const v = h[k];
  const parts =
    typeof v === 'number'
      ? [String(v)]
      : typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : undefined;
  if (parts === undefined) throw new ModelError(`${model}: hyper-parameter '${k}' must be layer sizes like "600,200", got ${String(v)}`);
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1) throw new ModelError(`${model}: hyper-parameter '${k}' has a bad layer size '${p}' (want positive integers like "600,200")`);
    return n;
  });
}

export function checkRate(model: string, what: string, p: number): void {
  if (!(p >= 0 && p < 1)) throw new ModelError(`${model}: ${what} must be in [0, 1), got ${p}`);
}

// ---- activations and initialisers -------------------------------------------------------------

export const ACTIVATIONS = ['identity', 'sigmoid', 'tanh', 'relu', 'elu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

/** All of these have kernels (and gradients) on both the cpu and the wasm backend. */
export function activate(tf: Tf, x: Tensor, a: Activation): Tensor {
  switch (a) {
    case 'identity':
      return x;
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'relu':
      return tf.relu(x);
    case 'elu':
      return tf.elu(x);
  }
}

/** Glorot/Xavier uniform: U(±√(6/(fanIn+fanOut))) — for tanh/sigmoid/linear layers. */
export function glorot(fanIn: number, fanOut: number): Initializer {
  return { kind: 'uniform', scale: Math.sqrt(6 / (fanIn + fanOut)) };
}

/** He uniform: U(±√(6/fanIn)) — for ReLU layers. */
export function he(fanIn: number): Initializer {
  return { kind: 'uniform', scale: Math.sqrt(6 / fanIn) };
}

// ---- gathered parameters ----------------------------------------------------------------------

export function needTable(model: string, p: GatheredParams, name: string): { rows: Int32Array; values: Float32Array } {
  const t = p.tables[name];
  if (t === undefined) throw new ModelError(`${model}: table '${name}' was not gathered`);
  return t;
}

export function needDense(model: string, p: GatheredParams, name: string, size: number): Float32Array {
  const d = p.dense[name];
  if (d === undefined) throw new ModelError(`${model}: dense '${name}' is missing from the parameters`);
  if (d.length !== size) throw new ModelError(`${model}: dense '${name}' has ${d.length} values, expected ${size}`);
  return d;
}

/** Position of each id in the sorted, unique `rows` (binary search). */
export function positions(ids: Int32Array, rows: Int32Array, what: string): Int32Array {
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const at = sortedIndexOf(rows, ids[i]);
    if (at < 0) throw new ModelError(`${what} row ${ids[i]} was not gathered for this batch`);
    out[i] = at;
  }
  return out;
}

// ---- interaction batches -----------------------------------------------------------------------

export function checkInteractions(model: string, b: InteractionsBatch, numCols: number, what = 'batch'): void {
  const n = b.user.length;
  if (b.offsets.length !== n + 1) throw new ModelError(`${model}: ${what} has ${b.offsets.length} offsets for ${n} rows (want rows + 1)`);
  if (b.offsets[0] !== 0 || b.offsets[n] !== b.items.length || b.items.length !== b.values.length) {
    throw new ModelError(`${model}: ${what} offsets must run 0…${b.items.length} and items/values must have equal lengths`);
  }
  for (let k = 0; k < n; k++) if (b.offsets[k + 1] < b.offsets[k]) throw new ModelError(`${model}: ${what} offsets decrease at row ${k}`);
  for (let e = 0; e < b.items.length; e++) {
    const c = b.items[e];
    if (c < 0 || c >= numCols) throw new ModelError(`${model}: ${what} column ${c} is out of range 0…${numCols - 1}`);
  }
}

/** Row index of every entry of a CSR batch. */
export function entryRows(offsets: Int32Array): Int32Array {
  const n = offsets.length - 1;
  const out = new Int32Array(offsets[n]);
  for (let k = 0; k < n; k++) out.fill(k, offsets[k], offsets[k + 1]);
  return out;
}

/**
 * Inverted dropout over a row's entries: each entry is kept with probability 1 − p and then
 * scaled by 1/(1 − p), so inference needs no rescaling. The mask of row k comes from
 * Rng(deriveSeed(seed, label, epoch, rowId)) — it depends only on the example, never on how a
 * batch was split across ranks. Returns the multipliers (0 or 1/(1−p)) per entry.
 */
export function dropoutScales(offsets: Int32Array, rowIds: Int32Array, p: number, rngFor: (rowId: number) => { nextFloat(): number }): Float32Array {
  const out = new Float32Array(offsets[offsets.length - 1]).fill(1);
  if (p === 0) return out;
  const keep = 1 / (1 - p);
  for (let k = 0; k < rowIds.length; k++) {
    const rng = rngFor(rowIds[k]);
    for (let e = offsets[k]; e < offsets[k + 1]; e++) out[e] = rng.nextFloat() < p ? 0 : keep;
  }
  return out;
}

// ---- embedding bag inputs ---------------------------------------------------------------------

/**
 * The entries of a CSR batch that survive dropout, as bags for @actorflow/embeddings' bagForward /
 * bagBackward: weights = value × scale, and dropped entries (scale 0) are left out entirely, so a
 * row used only by dropped entries gets no gradient (a lazy optimizer then leaves it alone).
 */
export function keptBags(
  b: { offsets: Int32Array; items: Int32Array; values: Float32Array },
  scales: Float32Array | undefined,
  valueScale?: Float32Array,
): { offsets: Int32Array; ids: Int32Array; weights: Float32Array } {
  const n = b.offsets.length - 1;
  const rowScale = (k: number): number => (valueScale === undefined ? 1 : valueScale[k]);
  if (scales === undefined) {
    const weights = new Float32Array(b.values.length);
    for (let k = 0; k < n; k++) for (let e = b.offsets[k]; e < b.offsets[k + 1]; e++) weights[e] = b.values[e] * rowScale(k);
    return { offsets: b.offsets, ids: b.items, weights };
  }
  let kept = 0;
  for (let e = 0; e < scales.length; e++) if (scales[e] !== 0) kept++;
  const offsets = new Int32Array(n + 1);
  const ids = new Int32Array(kept);
  const weights = new Float32Array(kept);
  let j = 0;
  for (let k = 0; k < n; k++) {
    for (let e = b.offsets[k]; e < b.offsets[k + 1]; e++) {
      if (scales[e] === 0) continue;
      ids[j] = b.items[e];
      weights[j++] = b.values[e] * scales[e] * rowScale(k);
    }
    offsets[k + 1] = j;
  }
  return { offsets, ids, weights };
}

/** Keeps the touched rows of an accumulator laid out like the gathered rows. */
export function compactRows(acc: Float64Array, touched: Uint8Array, gatheredRows: Int32Array, dim: number): SparseGradient {
  let count = 0;
  for (let p = 0; p < touched.length; p++) count += touched[p];
  const rows = new Int32Array(count);
  const values = new Float32Array(count * dim);
  let u = 0;
  for (let p = 0; p < touched.length; p++) {
    if (touched[p] === 0) continue;
    rows[u] = gatheredRows[p];
    for (let d = 0; d < dim; d++) values[u * dim + d] = acc[p * dim + d];
    u++;
  }
  return { rows, values };
}
