// Embedding bags: one output row per bag, combining the rows of that bag's ids (sum, mean or
// sqrtn), optionally weighted — computed on typed arrays, outside TF.js, like the tables. This is
// how a sparse input (a user's rated items, CSR) feeds a model without a dense input vector:
// x·W = Σ_j x_j W[j,:] is a weighted-sum bag over the rows of W. The backward pass returns a
// gradient for the bag's distinct rows only, so the optimizer stays row-wise (lazy).
//
// Combiners follow TF's `embedding_lookup_sparse` (weights default to 1; an empty bag gives 0):
//   sum    Σ w_j e_j
//   mean   Σ w_j e_j / Σ w_j
//   sqrtn  Σ w_j e_j / sqrt(Σ w_j²)      (unweighted: |N|^-½ Σ e_j — SVD++'s implicit term)
import { EmbeddingError, type SparseGradient } from './table.ts';
import { sortedIndexOf } from './interactions.ts';

export type BagMode = 'sum' | 'mean' | 'sqrtn';

/** Gathered rows of a table: `rows` sorted ascending and unique, `values` rows.length × dim. */
export interface GatheredRows {
  readonly rows: Int32Array;
  readonly values: Float32Array;
}

/** CSR bags: bag b holds ids[offsets[b] … offsets[b+1]) with weights[…] (all 1 when absent). */
interface Bags {
  readonly offsets: Int32Array;
  readonly ids: Int32Array;
  readonly weights?: Float32Array;
}

function check(dim: number, bags: Bags): number {
  const { offsets, ids, weights } = bags;
  if (!Number.isInteger(dim) || dim < 1) throw new EmbeddingError(`embedding bag: dim must be a positive integer, got ${dim}`);
  if (offsets.length < 1 || offsets[0] !== 0 || offsets[offsets.length - 1] !== ids.length) {
    throw new EmbeddingError(`embedding bag: offsets must start at 0 and end at ids.length (${ids.length}), got [${offsets[0]} … ${offsets[offsets.length - 1]}] (${offsets.length} values)`);
  }
  for (let b = 0; b + 1 < offsets.length; b++) {
    if (offsets[b + 1] < offsets[b]) throw new EmbeddingError(`embedding bag: offsets decrease at bag ${b} (${offsets[b]} > ${offsets[b + 1]})`);
  }
  if (weights !== undefined && weights.length !== ids.length) throw new EmbeddingError(`embedding bag: ${weights.length} weights for ${ids.length} ids`);
  return offsets.length - 1;
}

/** The divisor of bag b under the combiner (1 for sum; 0 marks an empty or zero-weight bag). */
function scaleOf(mode: BagMode, bags: Bags, b: number): number {
  if (mode === 'sum') return 1;
  const { offsets, weights } = bags;
  let s = 0;
  for (let j = offsets[b]; j < offsets[b + 1]; j++) {
    const w = weights === undefined ? 1 : weights[j];
    s += mode === 'mean' ? w : w * w;
  }
  if (s === 0) return 0;
  return mode === 'mean' ? 1 / s : 1 / Math.sqrt(s);
}

function positionOf(rows: Int32Array, id: number): number {
  const at = sortedIndexOf(rows, id);
  if (at < 0) throw new EmbeddingError(`embedding bag: row ${id} was not gathered`);
  return at;
}

/** Combined rows of every bag: (offsets.length − 1) × dim. Accumulates in float64, rounds once. */
export function bagForward(gathered: GatheredRows, dim: number, offsets: Int32Array, ids: Int32Array, weights?: Float32Array, mode: BagMode = 'sum'): Float32Array {
  const bags: Bags = weights === undefined ? { offsets, ids } : { offsets, ids, weights };
  const n = check(dim, bags);
  if (gathered.values.length !== gathered.rows.length * dim) throw new EmbeddingError(`embedding bag: ${gathered.values.length} gathered values for ${gathered.rows.length} rows × dim ${dim}`);
  const out = new Float32Array(n * dim);
  const acc = new Float64Array(dim);
  for (let b = 0; b < n; b++) {
    const scale = scaleOf(mode, bags, b);
    if (scale === 0) continue;
    acc.fill(0);
    for (let j = offsets[b]; j < offsets[b + 1]; j++) {
      const w = weights === undefined ? 1 : weights[j];
      const at = positionOf(gathered.rows, ids[j]) * dim;
      for (let k = 0; k < dim; k++) acc[k] += w * gathered.values[at + k];
    }
    for (let k = 0; k < dim; k++) out[b * dim + k] = acc[k] * scale;
  }
  return out;
}

/**
 * Gradient w.r.t. the table rows, given the gradient of the bags' outputs (n × dim): row r gets
 * Σ over its occurrences of w_j · scale_b · gradOut[b]. Rows are the bags' distinct ids, sorted;
 * accumulation runs in a fixed order (bags, then ids within a bag) in float64, so it is reproducible.
 */
export function bagBackward(gradOut: Float32Array, dim: number, offsets: Int32Array, ids: Int32Array, weights?: Float32Array, mode: BagMode = 'sum'): SparseGradient {
  const bags: Bags = weights === undefined ? { offsets, ids } : { offsets, ids, weights };
  const n = check(dim, bags);
  if (gradOut.length !== n * dim) throw new EmbeddingError(`embedding bag: gradient has ${gradOut.length} values for ${n} bags × dim ${dim}`);
  const rows = Int32Array.from(new Set(ids)).sort();
  const acc = new Float64Array(rows.length * dim);
  for (let b = 0; b < n; b++) {
    const scale = scaleOf(mode, bags, b);
    if (scale === 0) continue;
    for (let j = offsets[b]; j < offsets[b + 1]; j++) {
      const f = (weights === undefined ? 1 : weights[j]) * scale;
      const at = positionOf(rows, ids[j]) * dim;
      for (let k = 0; k < dim; k++) acc[at + k] += f * gradOut[b * dim + k];
    }
  }
  return { rows, values: Float32Array.from(acc) };
}
