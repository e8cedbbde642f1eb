// Fused sparse kernels for dot/bias interaction models (biased MF, SVD++), the TorchRec/FBGEMM
// idea on typed arrays: the lookup, the interaction, the loss and the backward pass run as one
// loop over the batch, reading the gathered rows in place (no per-example copies, no TF.js op), and
// the gradient comes out already deduplicated and aligned with the gathered rows — what the
// row-wise optimizers take. Measured in docs/BENCHMARKS.md: this replaces ~12 TF.js ops and four
// dedupe sorts per step. The TF.js autodiff formulation stays in the models' tests as the reference
// these kernels are checked against (float tolerance, and finite differences).
//
//   r̂_e = μ + b_u + b_i + (p_u + z_u) · q_i     (z_u: optional per-user addition, SVD++'s implicit term)
//   loss = mean_e (r̂_e − r_e)²
import { sortedIndexOf } from '@actorflow/data';
import { EmbeddingError, type SparseGradient } from './table.ts';
import type { GatheredRows } from './bag.ts';
import { batchScratch } from './wasm/kernels.ts';

let useWasm = true;

/**
 * Chooses the implementation of the batch kernels: the WebAssembly SIMD loop (default, where
 * available) or the JavaScript loop. Both give bit-identical results; tests compare them.
 */
export function setWasmKernels(on: boolean): void {
  useWasm = on;
}

// Index of an id in sorted rows, or −1: the one binary search, in @actorflow/data.
export { sortedIndexOf };

/** Position of every id among `rows` (sorted, unique); throws naming `what` for an id that is not there. */
export function rowPositions(rows: Int32Array, ids: Int32Array, what: string): Int32Array {
  const out = new Int32Array(ids.length);
  const top = rows.length > 0 ? rows[rows.length - 1] : -1;
  if (top >= 0 && top < 8 * ids.length + 65_536) {
    // Ids in a modest range: a direct index (O(1) per id) instead of a binary search each.
    const at = new Int32Array(top + 1).fill(-1);
    for (let r = 0; r < rows.length; r++) if (rows[r] >= 0) at[rows[r]] = r;
    for (let e = 0; e < ids.length; e++) {
      const id = ids[e];
      const p = id >= 0 && id <= top ? at[id] : -1;
      if (p < 0) throw new EmbeddingError(`${what} row ${id} was not gathered for this batch`);
      out[e] = p;
    }
    return out;
  }
  for (let e = 0; e < ids.length; e++) {
    const at = sortedIndexOf(rows, ids[e]);
    if (at < 0) throw new EmbeddingError(`${what} row ${ids[e]} was not gathered for this batch`);
    out[e] = at;
  }
  return out;
}

export interface BiasedDotInputs {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly dim: number;
  /** Gathered rows (sorted, unique) of the user and item factor tables (dim) and bias tables (dim 1). */
  readonly users: GatheredRows;
  readonly items: GatheredRows;
  readonly userBias: GatheredRows;
  readonly itemBias: GatheredRows;
  readonly mean: number;
  /** Added to each user's factor row: users.rows.length × dim, aligned with `users.rows` (SVD++). */
  readonly userExtra?: Float32Array;
}

interface Positions {
  readonly pu: Int32Array;
  readonly pi: Int32Array;
  readonly bu: Int32Array;
  readonly bi: Int32Array;
}

function positions(x: BiasedDotInputs): Positions {
  const { user, item, dim, users, items, userBias, itemBias } = x;
  if (item.length !== user.length) throw new EmbeddingError(`biased dot: ${user.length} users but ${item.length} items`);
  if (users.values.length !== users.rows.length * dim || items.values.length !== items.rows.length * dim) {
    throw new EmbeddingError(`biased dot: gathered factor rows do not match dim ${dim}`);
  }
  if (userBias.values.length !== userBias.rows.length || itemBias.values.length !== itemBias.rows.length) throw new EmbeddingError('biased dot: bias tables must have dim 1');
  if (x.userExtra !== undefined && x.userExtra.length !== users.values.length) throw new EmbeddingError(`biased dot: userExtra has ${x.userExtra.length} values, users ${users.values.length}`);
  const pu = rowPositions(users.rows, user, 'user');
  const pi = rowPositions(items.rows, item, 'item');
  // Bias tables are usually gathered with the same rows as the factors: reuse the positions.
  const bu = userBias.rows === users.rows ? pu : rowPositions(userBias.rows, user, 'userBias');
  const bi = itemBias.rows === items.rows ? pi : rowPositions(itemBias.rows, item, 'itemBias');
  return { pu, pi, bu, bi };
}

/** Predicted ratings, one per example. */
export function biasedDotPredict(x: BiasedDotInputs): Float32Array {
  const { pu, pi, bu, bi } = positions(x);
  const d = x.dim;
  const P = x.users.values;
  const Q = x.items.values;
  const Z = x.userExtra;
  const n = x.user.length;
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) {
    const po = pu[e] * d;
    const qo = pi[e] * d;
    let dot = 0;
    if (Z === undefined) for (let k = 0; k < d; k++) dot += P[po + k] * Q[qo + k];
    else for (let k = 0; k < d; k++) dot += (P[po + k] + Z[po + k]) * Q[qo + k];
    out[e] = x.mean + x.userBias.values[bu[e]] + x.itemBias.values[bi[e]] + dot;
  }
  return out;
}

export interface BiasedDotGradients {
  /** Mean squared error over the batch. */
  readonly loss: number;
  /** Gradients of the loss, aligned with the gathered rows of each input (every gathered row is touched). */
  readonly user: SparseGradient;
  readonly item: SparseGradient;
  readonly userBias: SparseGradient;
  readonly itemBias: SparseGradient;
  readonly mean: number;
  /** Gradient w.r.t. `userExtra` (equal to the user factor gradient), users.rows.length × dim; present with userExtra. */
  readonly userExtra?: Float32Array;
}

/**
 * Loss and gradients of the mean squared error in one pass over the batch. Gradients accumulate in
 * float32 in example order (deterministic); the loss in float64.
 */
export function biasedDotMse(x: BiasedDotInputs, target: Float32Array): BiasedDotGradients {
  const n = x.user.length;
  if (n === 0) throw new EmbeddingError('biased dot: empty batch');
  if (target.length !== n) throw new EmbeddingError(`biased dot: ${target.length} targets for ${n} examples`);
  const { pu, pi, bu, bi } = positions(x);
  const d = x.dim;
  const P = x.users.values;
  const Q = x.items.values;
  const Z = x.userExtra;
  const Bu = x.userBias.values;
  const Bi = x.itemBias.values;
  let gP: Float32Array;
  let gQ: Float32Array;
  let gBu: Float32Array;
  let gBi: Float32Array;
  let sq: number;
  let gMu: number;
  const w = Z === undefined && useWasm ? mseWasm(n, d, x.mean, pu, pi, bu, bi, P, Q, Bu, Bi, target) : undefined;
  if (w !== undefined) ({ gP, gQ, gBu, gBi, sq, gMu } = w);
  else {
    gP = new Float32Array(P.length);
    gQ = new Float32Array(Q.length);
    gBu = new Float32Array(Bu.length);
    gBi = new Float32Array(Bi.length);
    // Two monomorphic loops (V8 keeps each tight; a branch on Z inside the row loops halves the speed).
    [sq, gMu] = Z === undefined ? mseLoop(n, d, x.mean, pu, pi, bu, bi, P, Q, Bu, Bi, target, gP, gQ, gBu, gBi) : mseLoopExtra(n, d, x.mean, pu, pi, bu, bi, P, Z, Q, Bu, Bi, target, gP, gQ, gBu, gBi);
  }
  return {
    loss: sq / n,
    user: touchedOnly(x.users.rows, gP, d, pu),
    item: touchedOnly(x.items.rows, gQ, d, pi),
    userBias: touchedOnly(x.userBias.rows, gBu, 1, bu),
    itemBias: touchedOnly(x.itemBias.rows, gBi, 1, bi),
    mean: gMu,
    ...(Z !== undefined ? { userExtra: gP } : {}),
  };
}

/**
 * The gradient restricted to rows some example touched: a caller may gather more rows than the
 * batch uses, and a lazy optimizer must not count a step for those.
 */
function touchedOnly(rows: Int32Array, values: Float32Array, dim: number, used: Int32Array): SparseGradient {
  const hit = new Uint8Array(rows.length);
  let count = 0;
  for (let e = 0; e < used.length; e++) {
    if (hit[used[e]] === 0) {
      hit[used[e]] = 1;
      count++;
    }
  }
  if (count === rows.length) return { rows, values };
  const outRows = new Int32Array(count);
  const out = new Float32Array(count * dim);
  for (let r = 0, j = 0; r < rows.length; r++) {
    if (hit[r] === 0) continue;
    outRows[j] = rows[r];
    out.set(values.subarray(r * dim, (r + 1) * dim), j * dim);
    j++;
  }
  return { rows: outRows, values: out };
}

/**
 * mseLoop in WebAssembly SIMD (bit-identical): inputs copied into the scratch memory in bulk, the
 * gradients copied out. Undefined when WebAssembly SIMD is missing or the batch does not fit.
 */
function mseWasm(
  n: number,
  d: number,
  mu: number,
  pu: Int32Array,
  pi: Int32Array,
  bu: Int32Array,
  bi: Int32Array,
  P: Float32Array,
  Q: Float32Array,
  Bu: Float32Array,
  Bi: Float32Array,
  target: Float32Array,
): { gP: Float32Array; gQ: Float32Array; gBu: Float32Array; gBi: Float32Array; sq: number; gMu: number } | undefined {
  const s = batchScratch();
  const k = s?.kernels;
  if (s === undefined || k === undefined || k === null) return undefined;
  const a16 = (b: number): number => (b + 15) & ~15;
  const total = 5 * a16(4 * n) + 2 * (a16(4 * P.length) + a16(4 * Q.length) + a16(4 * Bu.length) + a16(4 * Bi.length)) + 16;
  if (!s.reset(total)) return undefined;
  const oPu = s.take(4 * n);
  const oPi = s.take(4 * n);
  const oBu = s.take(4 * n);
  const oBi = s.take(4 * n);
  const oT = s.take(4 * n);
  const oP = s.take(4 * P.length);
  const oQ = s.take(4 * Q.length);
  const oBuV = s.take(4 * Bu.length);
  const oBiV = s.take(4 * Bi.length);
  const ogP = s.take(4 * P.length);
  const ogQ = s.take(4 * Q.length);
  const ogBu = s.take(4 * Bu.length);
  const ogBi = s.take(4 * Bi.length);
  const oOut = s.take(16);
  const buf = s.buffer;
  new Int32Array(buf, oPu, n).set(pu);
  new Int32Array(buf, oPi, n).set(pi);
  new Int32Array(buf, oBu, n).set(bu);
  new Int32Array(buf, oBi, n).set(bi);
  new Float32Array(buf, oT, n).set(target);
  new Float32Array(buf, oP, P.length).set(P);
  new Float32Array(buf, oQ, Q.length).set(Q);
  new Float32Array(buf, oBuV, Bu.length).set(Bu);
  new Float32Array(buf, oBiV, Bi.length).set(Bi);
  // The gradient areas are contiguous: one fill zeroes them all.
  new Uint8Array(buf, ogP, oOut - ogP).fill(0);
  k.mse(n, d, mu, 2 / n, oPu, oPi, oBu, oBi, oP, oQ, oBuV, oBiV, oT, ogP, ogQ, ogBu, ogBi, oOut);
  const out = new Float64Array(buf, oOut, 2);
  return {
    gP: new Float32Array(buf, ogP, P.length).slice(),
    gQ: new Float32Array(buf, ogQ, Q.length).slice(),
    gBu: new Float32Array(buf, ogBu, Bu.length).slice(),
    gBi: new Float32Array(buf, ogBi, Bi.length).slice(),
    sq: out[0],
    gMu: out[1],
  };
}

function mseLoop(
  n: number,
  d: number,
  mu: number,
  pu: Int32Array,
  pi: Int32Array,
  bu: Int32Array,
  bi: Int32Array,
  P: Float32Array,
  Q: Float32Array,
  Bu: Float32Array,
  Bi: Float32Array,
  target: Float32Array,
  gP: Float32Array,
  gQ: Float32Array,
  gBu: Float32Array,
  gBi: Float32Array,
): [number, number] {
  const scale = 2 / n;
  const quads = d & ~3;
  let sq = 0;
  let gMu = 0;
  for (let e = 0; e < n; e++) {
    const po = pu[e] * d;
    const qo = pi[e] * d;
    // Four partial sums (k mod 4), then the tail in order: the WebAssembly kernel's order, and a
    // quarter of the dependent additions of one running sum.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let k = 0;
    for (; k < quads; k += 4) {
      s0 += P[po + k] * Q[qo + k];
      s1 += P[po + k + 1] * Q[qo + k + 1];
      s2 += P[po + k + 2] * Q[qo + k + 2];
      s3 += P[po + k + 3] * Q[qo + k + 3];
    }
    let dot = s0 + s1 + (s2 + s3);
    for (; k < d; k++) dot += P[po + k] * Q[qo + k];
    const err = mu + Bu[bu[e]] + Bi[bi[e]] + dot - target[e];
    sq += err * err;
    const g = scale * err;
    gMu += g;
    gBu[bu[e]] += g;
    gBi[bi[e]] += g;
    for (let k = 0; k < d; k++) {
      gP[po + k] += g * Q[qo + k];
      gQ[qo + k] += g * P[po + k];
    }
  }
  return [sq, gMu];
}

function mseLoopExtra(
  n: number,
  d: number,
  mu: number,
  pu: Int32Array,
  pi: Int32Array,
  bu: Int32Array,
  bi: Int32Array,
  P: Float32Array,
  Z: Float32Array,
  Q: Float32Array,
  Bu: Float32Array,
  Bi: Float32Array,
  target: Float32Array,
  gP: Float32Array,
  gQ: Float32Array,
  gBu: Float32Array,
  gBi: Float32Array,
): [number, number] {
  const scale = 2 / n;
  let sq = 0;
  let gMu = 0;
  for (let e = 0; e < n; e++) {
    const po = pu[e] * d;
    const qo = pi[e] * d;
    let dot = 0;
    for (let k = 0; k < d; k++) dot += (P[po + k] + Z[po + k]) * Q[qo + k];
    const err = mu + Bu[bu[e]] + Bi[bi[e]] + dot - target[e];
    sq += err * err;
    const g = scale * err;
    gMu += g;
    gBu[bu[e]] += g;
    gBi[bi[e]] += g;
    for (let k = 0; k < d; k++) {
      gP[po + k] += g * Q[qo + k];
      gQ[qo + k] += g * (P[po + k] + Z[po + k]);
    }
  }
  return [sq, gMu];
}
