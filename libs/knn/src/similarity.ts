// Similarities between users (user-based kNN) or items (item-based kNN), computed block by block.
//
// Why blocks: the full item-item matrix of ML-20M is 27k² floats ≈ 2.9 GB and user-user would be
// 138k² ≈ 76 GB. A block is a range of rows; for each row we accumulate its similarity to every
// other row in dense per-worker scratch arrays (O(numRows)), then keep only its kMax best
// neighbours, so the result is O(rows·kMax): 27k·200·12 B ≈ 65 MB item-item, 138k·200·12 B ≈
// 330 MB user-user. Blocks are independent, so workers (trainers) can each compute some of them
// from the same ratings and ship the typed-array results to be merged (see planBlocks,
// computeBlock, mergeBlocks).
//
// Definitions — everything over the co-rated pairs (the columns both rows have, n = support):
//   x = r − rowShift[row] − colShift[col], sim = Σ x_a·x_b / √(Σ x_a² · Σ x_b²)
//   cosine:           no shift
//   pearson:          rowShift = the row's own mean (item mean for item-kNN, user mean for user-kNN)
//   adjusted-cosine:  colShift = the other side's mean (user mean for item-kNN; Sarwar et al. 2001)
// Shrinkage (Koren 2008): sim · n / (n + shrinkage), so similarities resting on few co-raters
// count less. Pairs with n < minSupport, or a zero denominator, get no similarity.
// Cost per row a: Σ over a's columns c of |column c| — dominated by popular columns.
import { countIds, type Ratings } from '@actorflow/data';
import { buildCsr, rowStats, type Csr } from './csr.ts';
import { KnnError } from './errors.ts';

export type KnnKind = 'user' | 'item';
export type SimilarityKind = 'cosine' | 'pearson' | 'adjusted-cosine';

/** Ratings in both orientations plus per-user and per-item statistics: everything kNN reads. */
export interface KnnData {
  readonly numUsers: number;
  readonly numItems: number;
  readonly globalMean: number;
  readonly byUser: Csr;
  readonly byItem: Csr;
  readonly userMean: Float32Array;
  readonly userStd: Float32Array;
  readonly itemMean: Float32Array;
  readonly itemStd: Float32Array;
}

export interface SimilarityOptions {
  readonly kind: KnnKind;
  readonly similarity: SimilarityKind;
  /** Shrinkage λ in sim·n/(n+λ) (default 100; 0 turns it off). */
  readonly shrinkage?: number;
  /** Fewest co-raters for a similarity to exist (default 1). */
  readonly minSupport?: number;
  /** Neighbours kept per row (default 200): the largest k a prediction or sweepK can use. */
  readonly kMax?: number;
  /** Keep negative similarities among the neighbours (default false: only sim > 0 are kept). */
  readonly keepNegative?: boolean;
}

/** A range of rows [from, to) — rows are items for item-kNN, users for user-kNN. */
export interface Block {
  readonly index: number;
  readonly from: number;
  readonly to: number;
}

/**
 * Neighbour lists of rows [from, to): row from+r has neighbours[offsets[r] … offsets[r+1]),
 * best first, with their similarity and support (co-raters). Only numbers and typed arrays, so
 * it goes over the wire (msgpack with binary typed arrays) as is.
 */
export interface SimilarityBlock {
  readonly from: number;
  readonly to: number;
  readonly kMax: number;
  readonly offsets: Int32Array;
  readonly neighbors: Int32Array;
  readonly sims: Float32Array;
  readonly support: Int32Array;
}

/** Neighbour lists of every row (a merged set of blocks): row r is offsets[r] … offsets[r+1). */
export interface Neighbours {
  readonly numRows: number;
  readonly kMax: number;
  readonly offsets: Int32Array;
  readonly neighbors: Int32Array;
  readonly sims: Float32Array;
  readonly support: Int32Array;
}

interface Resolved {
  readonly kind: KnnKind;
  readonly similarity: SimilarityKind;
  readonly shrinkage: number;
  readonly minSupport: number;
  readonly kMax: number;
  readonly keepNegative: boolean;
}

export function resolveSimilarityOptions(o: SimilarityOptions): Resolved {
  if (o.kind !== 'user' && o.kind !== 'item') throw new KnnError(`kind must be 'user' or 'item', got '${String(o.kind)}'`);
  if (o.similarity !== 'cosine' && o.similarity !== 'pearson' && o.similarity !== 'adjusted-cosine') {
    throw new KnnError(`similarity must be 'cosine', 'pearson' or 'adjusted-cosine', got '${String(o.similarity)}'`);
  }
  const shrinkage = o.shrinkage ?? 100;
  const minSupport = o.minSupport ?? 1;
  const kMax = o.kMax ?? 200;
  if (!Number.isFinite(shrinkage) || shrinkage < 0) throw new KnnError(`shrinkage must be a finite number >= 0, got ${shrinkage}`);
  if (!Number.isInteger(minSupport) || minSupport < 1) throw new KnnError(`minSupport must be an integer >= 1, got ${minSupport}`);
  if (!Number.isInteger(kMax) || kMax < 1) throw new KnnError(`kMax must be an integer >= 1, got ${kMax}`);
  return { kind: o.kind, similarity: o.similarity, shrinkage, minSupport, kMax, keepNegative: o.keepNegative === true };
}

/**
 * Builds both CSRs and the statistics. numUsers/numItems default to 1 + the largest id. Every
 * worker that computes blocks builds the same KnnData from the same ratings.
 */
export function prepareKnn(ratings: Ratings, dims: { numUsers?: number; numItems?: number } = {}): KnnData {
  if (ratings.length === 0) throw new KnnError('no ratings: kNN needs at least one rating to compute similarities and means');
  const numUsers = dims.numUsers ?? countIds(ratings.user);
  const numItems = dims.numItems ?? countIds(ratings.item);
  let sum = 0;
  for (let i = 0; i < ratings.length; i++) sum += ratings.rating[i];
  const globalMean = sum / ratings.length;
  const byUser = buildCsr(ratings, 'user', numUsers, numItems);
  const byItem = buildCsr(ratings, 'item', numUsers, numItems);
  const u = rowStats(byUser, globalMean);
  const it = rowStats(byItem, globalMean);
  return { numUsers, numItems, globalMean, byUser, byItem, userMean: u.mean, userStd: u.std, itemMean: it.mean, itemStd: it.std };
}

/** Rows/transposed matrix and the shifts of the chosen similarity, for the chosen kind. */
function orient(data: KnnData, o: Resolved): { rows: Csr; cols: Csr; rowShift: Float32Array | undefined; colShift: Float32Array | undefined } {
  const item = o.kind === 'item';
  const rows = item ? data.byItem : data.byUser;
  const cols = item ? data.byUser : data.byItem;
  const rowMean = item ? data.itemMean : data.userMean;
  const colMean = item ? data.userMean : data.itemMean;
  return {
    rows,
    cols,
    rowShift: o.similarity === 'pearson' ? rowMean : undefined,
    colShift: o.similarity === 'adjusted-cosine' ? colMean : undefined,
  };
}

function finish(dot: number, na: number, nb: number, n: number, o: Resolved): number {
  if (n < o.minSupport) return Number.NaN;
  const den = Math.sqrt(na * nb);
  if (!(den > 0)) return Number.NaN;
  return (dot / den) * (n / (n + o.shrinkage));
}

/**
 * Similarity of rows a and b (items for kind 'item', users for 'user') by a merge of their
 * sorted rows; NaN when they have fewer than minSupport co-raters. O(|a| + |b|): for inspection
 * and tests — blocks use the scatter algorithm.
 */
export function pairSimilarity(data: KnnData, options: SimilarityOptions, a: number, b: number): { similarity: number; support: number } {
  const o = resolveSimilarityOptions(options);
  const { rows, rowShift, colShift } = orient(data, o);
  if (a < 0 || a >= rows.numRows || b < 0 || b >= rows.numRows) throw new KnnError(`pairSimilarity: rows ${a}, ${b} outside 0…${rows.numRows - 1}`);
  let p = rows.offsets[a];
  let q = rows.offsets[b];
  const pe = rows.offsets[a + 1];
  const qe = rows.offsets[b + 1];
  let dot = 0;
  let na = 0;
  let nb = 0;
  let n = 0;
  while (p < pe && q < qe) {
    const cp = rows.cols[p];
    const cq = rows.cols[q];
    if (cp < cq) p++;
    else if (cq < cp) q++;
    else {
      const cs = colShift === undefined ? 0 : colShift[cp];
      const xa = rows.values[p] - (rowShift === undefined ? 0 : rowShift[a]) - cs;
      const xb = rows.values[q] - (rowShift === undefined ? 0 : rowShift[b]) - cs;
      dot += xa * xb;
      na += xa * xa;
      nb += xb * xb;
      n++;
      p++;
      q++;
    }
  }
  return { similarity: finish(dot, na, nb, n, o), support: n };
}

/**
 * Splits rows 0…n−1 into `blocks` contiguous ranges. Without `cost` the ranges have equal row
 * counts; with a per-row cost (see blockCosts) they have about equal total cost, which matters
 * because popular rows cost far more. Never returns empty blocks (fewer blocks when n < blocks).
 */
export function planBlocks(n: number, blocks: number, cost?: ArrayLike<number>): Block[] {
  if (!Number.isInteger(n) || n < 0) throw new KnnError(`planBlocks: row count must be an integer >= 0, got ${n}`);
  if (!Number.isInteger(blocks) || blocks < 1) throw new KnnError(`planBlocks: blocks must be an integer >= 1, got ${blocks}`);
  if (cost !== undefined && cost.length !== n) throw new KnnError(`planBlocks: ${cost.length} costs for ${n} rows`);
  const out: Block[] = [];
  const b = Math.min(blocks, n);
  if (cost === undefined) {
    for (let i = 0; i < b; i++) out.push({ index: i, from: Math.floor((i * n) / b), to: Math.floor(((i + 1) * n) / b) });
    return out;
  }
  let total = 0;
  for (let i = 0; i < n; i++) total += cost[i];
  let from = 0;
  let acc = 0;
  for (let r = 0; r < n && out.length < b - 1; r++) {
    acc += cost[r];
    // Close the block once it holds its share, leaving at least one row per remaining block.
    if (acc >= (total * (out.length + 1)) / b && n - (r + 1) >= b - out.length - 1) {
      out.push({ index: out.length, from, to: r + 1 });
      from = r + 1;
    }
  }
  out.push({ index: out.length, from, to: n });
  return out;
}

/** Work per row for planBlocks: Σ over the row's columns of the column's length. */
export function blockCosts(data: KnnData, kind: KnnKind): Float64Array {
  const rows = kind === 'item' ? data.byItem : data.byUser;
  const cols = kind === 'item' ? data.byUser : data.byItem;
  const cost = new Float64Array(rows.numRows);
  for (let r = 0; r < rows.numRows; r++) {
    let c = 0;
    for (let p = rows.offsets[r]; p < rows.offsets[r + 1]; p++) c += cols.offsets[rows.cols[p] + 1] - cols.offsets[rows.cols[p]];
    cost[r] = c;
  }
  return cost;
}

/** Bounded selection of the best (highest sim; ties → lower id) kMax candidates of one row. */
class BestNeighbours {
  readonly #ids: Int32Array;
  readonly #sims: Float64Array;
  #size = 0;

  constructor(readonly cap: number) {
    this.#ids = new Int32Array(cap);
    this.#sims = new Float64Array(cap);
  }

  reset(): void {
    this.#size = 0;
  }

  // True when slot i is worse than slot j (the heap keeps its worst element at the root).
  #worse(i: number, j: number): boolean {
    return this.#sims[i] < this.#sims[j] || (this.#sims[i] === this.#sims[j] && this.#ids[i] > this.#ids[j]);
  }

  #swap(i: number, j: number): void {
    const id = this.#ids[i];
    this.#ids[i] = this.#ids[j];
    this.#ids[j] = id;
    const s = this.#sims[i];
    this.#sims[i] = this.#sims[j];
    this.#sims[j] = s;
  }

  push(id: number, sim: number): void {
    if (this.#size < this.cap) {
      let c = this.#size++;
      this.#ids[c] = id;
      this.#sims[c] = sim;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.#worse(c, p)) break;
        this.#swap(c, p);
        c = p;
      }
      return;
    }
    const rs = this.#sims[0];
    if (sim < rs || (sim === rs && id > this.#ids[0])) return;
    this.#ids[0] = id;
    this.#sims[0] = sim;
    let p = 0;
    for (;;) {
      const l = 2 * p + 1;
      const r = l + 1;
      let w = p;
      if (l < this.#size && this.#worse(l, w)) w = l;
      if (r < this.#size && this.#worse(r, w)) w = r;
      if (w === p) break;
      this.#swap(p, w);
      p = w;
    }
  }

  /** The kept ids and similarities, best first. */
  sorted(): { ids: Int32Array; sims: Float32Array } {
    const order = Array.from({ length: this.#size }, (_, i) => i);
    order.sort((i, j) => this.#sims[j] - this.#sims[i] || this.#ids[i] - this.#ids[j]);
    return { ids: Int32Array.from(order, (i) => this.#ids[i]), sims: Float32Array.from(order, (i) => this.#sims[i]) };
  }
}

/**
 * Similarities of rows [block.from, block.to) to every row, keeping each row's kMax best.
 * Scatter algorithm: for row a, every column c of a, every other row b of column c, accumulate
 * the co-rated sums of (a, b) in dense scratch arrays indexed by b. Scratch is O(numRows) and
 * reused across the block's rows; the result is O((to−from)·kMax).
 */
export function computeBlock(data: KnnData, options: SimilarityOptions, block: Pick<Block, 'from' | 'to'>): SimilarityBlock {
  const o = resolveSimilarityOptions(options);
  const { rows, cols, rowShift, colShift } = orient(data, o);
  const { from, to } = block;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > rows.numRows || from > to) {
    throw new KnnError(`computeBlock: block [${from}, ${to}) is not inside the ${rows.numRows} ${o.kind}s; use planBlocks(${rows.numRows}, B)`);
  }
  const N = rows.numRows;
  const dot = new Float64Array(N);
  const na = new Float64Array(N);
  const nb = new Float64Array(N);
  const cnt = new Int32Array(N);
  const touched = new Int32Array(N);
  const best = new BestNeighbours(o.kMax);
  const offsets = new Int32Array(to - from + 1);
  // Lists grow per row; typed chunks are concatenated at the end.
  const idsParts: Int32Array[] = [];
  const simParts: Float32Array[] = [];
  const supParts: Int32Array[] = [];
  let total = 0;
  for (let a = from; a < to; a++) {
    let nt = 0;
    const ra = rowShift === undefined ? 0 : rowShift[a];
    for (let p = rows.offsets[a]; p < rows.offsets[a + 1]; p++) {
      const c = rows.cols[p];
      const cs = colShift === undefined ? 0 : colShift[c];
      const xa = rows.values[p] - ra - cs;
      for (let q = cols.offsets[c]; q < cols.offsets[c + 1]; q++) {
        const b = cols.cols[q];
        if (b === a) continue;
        const xb = cols.values[q] - (rowShift === undefined ? 0 : rowShift[b]) - cs;
        if (cnt[b] === 0) touched[nt++] = b;
        dot[b] += xa * xb;
        na[b] += xa * xa;
        nb[b] += xb * xb;
        cnt[b]++;
      }
    }
    best.reset();
    for (let t = 0; t < nt; t++) {
      const b = touched[t];
      const s = finish(dot[b], na[b], nb[b], cnt[b], o);
      if (s === s && (o.keepNegative || s > 0)) {
        best.push(b, s);
      }
    }
    const { ids, sims } = best.sorted();
    const sup = Int32Array.from(ids, (b) => cnt[b]);
    for (let t = 0; t < nt; t++) {
      const b = touched[t];
      dot[b] = 0;
      na[b] = 0;
      nb[b] = 0;
      cnt[b] = 0;
    }
    idsParts.push(ids);
    simParts.push(sims);
    supParts.push(sup);
    total += ids.length;
    offsets[a - from + 1] = total;
  }
  const neighbors = new Int32Array(total);
  const sims = new Float32Array(total);
  const support = new Int32Array(total);
  for (let r = 0; r < idsParts.length; r++) {
    neighbors.set(idsParts[r], offsets[r]);
    sims.set(simParts[r], offsets[r]);
    support.set(supParts[r], offsets[r]);
  }
  return { from, to, kMax: o.kMax, offsets, neighbors, sims, support };
}

/** Joins blocks (any order) that together cover rows 0…numRows−1 exactly once. */
export function mergeBlocks(blocks: readonly SimilarityBlock[], numRows: number): Neighbours {
  const sorted = [...blocks].sort((x, y) => x.from - y.from);
  let expect = 0;
  let total = 0;
  const kMax = sorted.length > 0 ? sorted[0].kMax : 1;
  for (const b of sorted) {
    if (b.from !== expect) {
      throw new KnnError(`mergeBlocks: rows ${expect}…${b.from - 1} are ${b.from > expect ? 'missing' : 'covered twice'}; every row must be in exactly one block (use planBlocks)`);
    }
    if (b.kMax !== kMax) throw new KnnError(`mergeBlocks: blocks were computed with different kMax (${kMax} and ${b.kMax})`);
    if (b.offsets.length !== b.to - b.from + 1) throw new KnnError(`mergeBlocks: block [${b.from}, ${b.to}) has ${b.offsets.length} offsets`);
    expect = b.to;
    total += b.neighbors.length;
  }
  if (expect !== numRows) throw new KnnError(`mergeBlocks: blocks cover rows 0…${expect - 1} but there are ${numRows} rows`);
  const offsets = new Int32Array(numRows + 1);
  const neighbors = new Int32Array(total);
  const sims = new Float32Array(total);
  const support = new Int32Array(total);
  let at = 0;
  for (const b of sorted) {
    for (let r = 0; r < b.to - b.from; r++) offsets[b.from + r + 1] = at + b.offsets[r + 1];
    neighbors.set(b.neighbors, at);
    sims.set(b.sims, at);
    support.set(b.support, at);
    at += b.neighbors.length;
  }
  return { numRows, kMax, offsets, neighbors, sims, support };
}
