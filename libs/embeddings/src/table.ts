// Embedding tables live outside the TF.js graph as Float32Array rows: a step gathers only the rows
// its batch needs, and optimizers update only those rows. (TF.js has no sparse gradients; the
// gradient of tf.gather is dense over the whole table — measured unusably slow.)
import { Rng, deriveSeed } from '@actorflow/data';
import { allocTableData } from './wasm/kernels.ts';

export class EmbeddingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddingError';
  }
}

export type Initializer =
  { readonly kind: 'zeros' } | { readonly kind: 'constant'; readonly value: number } | { readonly kind: 'uniform'; readonly scale: number } | { readonly kind: 'normal'; readonly std: number };

export interface EmbeddingTable {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  /** rows × dim, row-major. */
  readonly data: Float32Array;
}

/**
 * Initial value of one row, from (seed, table, row) alone: any process can initialise any subset
 * of rows (a parameter-server shard, a replica) and they agree bit for bit.
 */
export function initRow(init: Initializer, seed: number, table: string, row: number, out: Float32Array): void {
  switch (init.kind) {
    case 'zeros':
      out.fill(0);
      return;
    case 'constant':
      out.fill(init.value);
      return;
    case 'uniform': {
      const rng = new Rng(deriveSeed(seed, table, row));
      for (let k = 0; k < out.length; k++) out[k] = (rng.nextFloat() * 2 - 1) * init.scale;
      return;
    }
    case 'normal': {
      const rng = new Rng(deriveSeed(seed, table, row));
      for (let k = 0; k < out.length; k++) out[k] = rng.normal() * init.std;
      return;
    }
  }
}

export function createTable(name: string, rows: number, dim: number, init: Initializer, seed: number): EmbeddingTable {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(dim) || dim < 1) {
    throw new EmbeddingError(`table ${name}: rows must be >= 0 and dim >= 1 (integers), got ${rows} × ${dim}`);
  }
  // Large tables live in a WebAssembly arena (with room for their optimizer state), so the
  // row-wise optimizer kernel updates them in place; see wasm/kernels.ts.
  const data = allocTableData(rows, dim);
  for (let r = 0; r < rows; r++) initRow(init, seed, name, r, data.subarray(r * dim, (r + 1) * dim));
  return { name, rows, dim, data };
}

function checkRows(t: EmbeddingTable, rows: Int32Array): void {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (r < 0 || r >= t.rows) throw new EmbeddingError(`table ${t.name}: row ${r} is out of range 0…${t.rows - 1}`);
  }
}

/** Copies the given rows (in order, repeats allowed) into a dense rows.length × dim array. */
export function gatherRows(t: EmbeddingTable, rows: Int32Array): Float32Array {
  checkRows(t, rows);
  const out = new Float32Array(rows.length * t.dim);
  for (let i = 0; i < rows.length; i++) out.set(t.data.subarray(rows[i] * t.dim, (rows[i] + 1) * t.dim), i * t.dim);
  return out;
}

/** Writes rows (e.g. pulled from a parameter server) into the table. */
export function scatterRows(t: EmbeddingTable, rows: Int32Array, values: Float32Array): void {
  checkRows(t, rows);
  if (values.length !== rows.length * t.dim) throw new EmbeddingError(`table ${t.name}: ${values.length} values for ${rows.length} rows × dim ${t.dim}`);
  for (let i = 0; i < rows.length; i++) t.data.set(values.subarray(i * t.dim, (i + 1) * t.dim), rows[i] * t.dim);
}

export interface SparseGradient {
  /** Sorted ascending, unique. */
  readonly rows: Int32Array;
  /** rows.length × dim. */
  readonly values: Float32Array;
}

/**
 * Sums gradient rows of repeated ids (a batch often touches the same item twice) and sorts by
 * row, so each row is sent and updated once, in a fixed order (which keeps runs reproducible).
 */
export function dedupeSparseGradient(rows: Int32Array, values: Float32Array, dim: number): SparseGradient {
  if (values.length !== rows.length * dim) throw new EmbeddingError(`${values.length} gradient values for ${rows.length} rows × dim ${dim}`);
  const order = Array.from(rows.keys()).sort((a, b) => rows[a] - rows[b] || a - b);
  let unique = 0;
  for (let k = 0; k < order.length; k++) if (k === 0 || rows[order[k]] !== rows[order[k - 1]]) unique++;
  const outRows = new Int32Array(unique);
  const out = new Float32Array(unique * dim);
  let u = -1;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    if (k === 0 || rows[i] !== rows[order[k - 1]]) outRows[++u] = rows[i];
    for (let d = 0; d < dim; d++) out[u * dim + d] += values[i * dim + d];
  }
  return { rows: outRows, values: out };
}

/**
 * The sum of several sparse gradients over the same table (each with sorted, unique rows), in
 * part order and float32 per addition starting from 0, each sum then times `scale` (rounded to
 * float32): the same bits as folding `addSparse` over the parts and scaling the result, in one
 * k-way merge that writes each output value once (the mirrored root's per-step reduction).
 */
export function sumSparseInOrder(parts: readonly SparseGradient[], dim: number, scale = 1): SparseGradient {
  const k = parts.length;
  const partRows = parts.map((p) => p.rows);
  const partVals = parts.map((p) => p.values);
  const ends = Int32Array.from(partRows, (r) => r.length);
  let upper = 0;
  for (let p = 0; p < k; p++) upper += ends[p];
  const rows = new Int32Array(upper);
  const vals = new Float32Array(upper * dim);
  const at = new Int32Array(k);
  let n = 0;
  for (;;) {
    let r = 2147483647;
    let any = false;
    for (let p = 0; p < k; p++) {
      if (at[p] < ends[p]) {
        const x = partRows[p][at[p]];
        if (!any || x < r) r = x;
        any = true;
      }
    }
    if (!any) break;
    rows[n] = r;
    const o = n * dim;
    let first = true;
    for (let p = 0; p < k; p++) {
      if (at[p] >= ends[p] || partRows[p][at[p]] !== r) continue;
      const v = partVals[p];
      const base = at[p] * dim;
      // The Float32Array store rounds each sum to float32; the first adds to 0 (−0 becomes +0, as in addSparse).
      if (first) for (let d = 0; d < dim; d++) vals[o + d] = 0 + v[base + d];
      else for (let d = 0; d < dim; d++) vals[o + d] += v[base + d];
      first = false;
      at[p]++;
    }
    // … and the product with the scale too, as scaling a float32 copy would.
    if (scale !== 1) for (let d = 0; d < dim; d++) vals[o + d] *= scale;
    n++;
  }
  return { rows: n === upper ? rows : rows.slice(0, n), values: n === upper ? vals : vals.slice(0, n * dim) };
}

/** Adds `b` into `a` (both deduplicated and sorted) scaled by `scale`: used to sum gradients of several ranks in rank order. */
export function addSparse(a: SparseGradient, b: SparseGradient, dim: number, scale = 1): SparseGradient {
  // Typed arrays sized for the worst case (no shared row), trimmed at the end: the merge of two
  // ranks' gradients runs every mirrored step, and growing JS arrays made it the step's bulk.
  const na = a.rows.length;
  const nb = b.rows.length;
  if (na === 0) {
    // The first rank's rows (the root's reduction starts from nothing): the merge below with
    // every row from b, in one pass — the same bits (0 + x turns −0 into +0).
    const vals = new Float32Array(nb * dim);
    const bv = b.values;
    for (let k = 0; k < vals.length; k++) vals[k] = Math.fround(0 + Math.fround(bv[k] * scale));
    return { rows: b.rows.slice(), values: vals };
  }
  const rows = new Int32Array(na + nb);
  const vals = new Float32Array((na + nb) * dim);
  const av = a.values;
  const bv = b.values;
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < na || j < nb) {
    const ra = i < na ? a.rows[i] : Number.POSITIVE_INFINITY;
    const rb = j < nb ? b.rows[j] : Number.POSITIVE_INFINITY;
    const r = ra < rb ? ra : rb;
    rows[n] = r;
    const o = n * dim;
    // Float32 accumulation, like the dense path, so results match bit for bit.
    if (ra === r && rb === r) for (let d = 0; d < dim; d++) vals[o + d] = Math.fround(av[i * dim + d] + Math.fround(bv[j * dim + d] * scale));
    else if (ra === r) for (let d = 0; d < dim; d++) vals[o + d] = av[i * dim + d];
    else for (let d = 0; d < dim; d++) vals[o + d] = Math.fround(0 + Math.fround(bv[j * dim + d] * scale));
    if (ra === r) i++;
    if (rb === r) j++;
    n++;
  }
  return { rows: n === na + nb ? rows : rows.slice(0, n), values: n === na + nb ? vals : vals.slice(0, n * dim) };
}
