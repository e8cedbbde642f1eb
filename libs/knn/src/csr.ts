// Compressed sparse rows over the ratings, built once by user and once by item. At ML-20M
// (20M ratings) each orientation is offsets (numRows+1)·4 B + cols 80 MB + values 80 MB, so the
// pair costs ~320 MB — the same order as the columnar Ratings themselves, and no JS objects.
import { sortedIndexOf, type Ratings } from '@actorflow/data';
import { KnnError } from './errors.ts';

/** Row r holds columns cols[offsets[r] … offsets[r+1]) in ascending order, with values alongside. */
export interface Csr {
  readonly numRows: number;
  readonly numCols: number;
  readonly offsets: Int32Array;
  readonly cols: Int32Array;
  readonly values: Float32Array;
}

/**
 * CSR of `ratings` with rows = users (`by: 'user'`) or items (`by: 'item'`). Two stable counting
 * sorts (by column, then by row) leave each row's columns ascending, in O(ratings + rows + cols).
 * A repeated (user, item) pair is an error: kNN has no rule for which rating counts.
 */
export function buildCsr(ratings: Ratings, by: 'user' | 'item', numUsers: number, numItems: number): Csr {
  const rowsCol = by === 'user' ? ratings.user : ratings.item;
  const colsCol = by === 'user' ? ratings.item : ratings.user;
  const numRows = by === 'user' ? numUsers : numItems;
  const numCols = by === 'user' ? numItems : numUsers;
  const n = ratings.length;
  for (let i = 0; i < n; i++) {
    const u = ratings.user[i];
    const it = ratings.item[i];
    if (u < 0 || u >= numUsers || it < 0 || it >= numItems) {
      throw new KnnError(`rating row ${i} has user ${u}, item ${it} outside ${numUsers} users × ${numItems} items; pass numUsers/numItems covering every id`);
    }
  }
  // Pass 1: order by column.
  const colStart = new Int32Array(numCols + 1);
  for (let i = 0; i < n; i++) colStart[colsCol[i] + 1]++;
  for (let c = 0; c < numCols; c++) colStart[c + 1] += colStart[c];
  const byCol = new Int32Array(n);
  for (let i = 0; i < n; i++) byCol[colStart[colsCol[i]]++] = i;
  // Pass 2: stable by row, so columns stay ascending inside a row.
  const offsets = new Int32Array(numRows + 1);
  for (let i = 0; i < n; i++) offsets[rowsCol[i] + 1]++;
  for (let r = 0; r < numRows; r++) offsets[r + 1] += offsets[r];
  const fill = offsets.slice(0, numRows);
  const cols = new Int32Array(n);
  const values = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const i = byCol[k];
    const p = fill[rowsCol[i]]++;
    cols[p] = colsCol[i];
    values[p] = ratings.rating[i];
  }
  for (let r = 0; r < numRows; r++) {
    for (let p = offsets[r] + 1; p < offsets[r + 1]; p++) {
      if (cols[p] === cols[p - 1]) {
        const [u, it] = by === 'user' ? [r, cols[p]] : [cols[p], r];
        throw new KnnError(`user ${u} rated item ${it} more than once; deduplicate the ratings (e.g. keep the latest) before building a kNN model`);
      }
    }
  }
  return { numRows, numCols, offsets, cols, values };
}

/** Value at (row, col), or NaN when absent: binary search in the row's sorted columns. */
export function csrGet(m: Csr, row: number, col: number): number {
  if (row < 0 || row >= m.numRows) return Number.NaN;
  const at = sortedIndexOf(m.cols, col, m.offsets[row], m.offsets[row + 1]);
  return at < 0 ? Number.NaN : m.values[at];
}

/** Per-row mean and (population) standard deviation; empty rows get the fallback mean and σ 1. */
export function rowStats(m: Csr, fallbackMean: number): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(m.numRows);
  const std = new Float32Array(m.numRows);
  for (let r = 0; r < m.numRows; r++) {
    const a = m.offsets[r];
    const b = m.offsets[r + 1];
    if (a === b) {
      mean[r] = fallbackMean;
      std[r] = 1;
      continue;
    }
    let s = 0;
    for (let p = a; p < b; p++) s += m.values[p];
    const mu = s / (b - a);
    let v = 0;
    for (let p = a; p < b; p++) v += (m.values[p] - mu) * (m.values[p] - mu);
    const sd = Math.sqrt(v / (b - a));
    mean[r] = mu;
    // σ = 0 (one rating, or all equal): every z-score is 0 whatever σ is, so 1 avoids 0/0.
    std[r] = sd > 1e-6 ? sd : 1;
  }
  return { mean, std };
}
