// Full-ranking evaluation: every item of the catalogue is a candidate, the user's training items
// are excluded, and the held-out items are the relevant ones. The accumulator takes one user (or a
// batch of users) at a time, so an evaluator can stream users without holding all score rows.
// Per user it costs O(n log Kmax) for the top list plus O(n) for the exact MRR rank.
import { MetricsError } from './regression.ts';
import { averagePrecisionAt, ndcgAt, precisionAt, recallAt, type Gain, type Relevance } from './ranking.ts';
import { rankOf, rankedBefore, topK, type Scores } from './topk.ts';

export const DEFAULT_KS: readonly number[] = [5, 10, 20, 50];

export interface RankingAccumulatorOptions {
  readonly numItems: number;
  /** Cut-offs (default [5, 10, 20, 50]). */
  readonly ks?: readonly number[];
  /** DCG gain for graded relevance (default linear). */
  readonly gain?: Gain;
}

/** Rows of a CSR matrix, e.g. an InteractionsBatch from @actorflow/data: row r is items[offsets[r] … offsets[r+1]). */
export interface CsrRows {
  readonly offsets: Int32Array;
  readonly items: Int32Array;
  readonly values?: Float32Array;
}

export interface RankingResult {
  /** Users that had at least one relevant item and entered the means. */
  readonly users: number;
  /** Users skipped because they had no relevant item (no metric is defined for them). */
  readonly skipped: number;
  /** Means over `users`: `precision@K`, `recall@K`, `ndcg@K`, `map@K`, `hr@K`, `arhr@K`, `coverage@K` for each K, and `mrr`. NaN when users is 0. */
  readonly metrics: Record<string, number>;
}

const PER_K = ['precision', 'recall', 'ndcg', 'map', 'hr', 'arhr'] as const;

export class RankingAccumulator {
  readonly numItems: number;
  readonly ks: readonly number[];
  readonly #gain: Gain;
  readonly #kMax: number;
  // sums[j * PER_K.length + m]: sum of metric m at ks[j], in float64.
  readonly #sums: Float64Array;
  #mrr = 0;
  #users = 0;
  #skipped = 0;
  // Best (smallest) 0-based position at which each item appeared in anyone's list: coverage@K
  // for every K from one Int32Array instead of one bitmap per K.
  readonly #bestPos: Int32Array;

  constructor(options: RankingAccumulatorOptions) {
    const { numItems } = options;
    if (!Number.isInteger(numItems) || numItems < 1) throw new MetricsError(`RankingAccumulator: numItems must be an integer >= 1, got ${numItems}`);
    const ks = options.ks ?? DEFAULT_KS;
    if (ks.length === 0) throw new MetricsError('RankingAccumulator: ks is empty; pass at least one cut-off (e.g. [10])');
    for (const k of ks) if (!Number.isInteger(k) || k < 1) throw new MetricsError(`RankingAccumulator: every K must be an integer >= 1, got ${k} in [${ks.join(', ')}]`);
    this.numItems = numItems;
    this.ks = [...ks];
    this.#gain = options.gain ?? 'linear';
    this.#kMax = Math.max(...ks);
    this.#sums = new Float64Array(ks.length * PER_K.length);
    this.#bestPos = new Int32Array(numItems).fill(0x7fffffff);
  }

  /**
   * One user: `scores` over all numItems items, `seen` the items to exclude (training items),
   * `relevant` the held-out items and optional `grades` (same length; grade > 0 = relevant).
   * A user with no relevant item is skipped and counted in `skipped`.
   */
  add(scores: Scores, seen: Int32Array | undefined, relevant: Int32Array, grades?: Float32Array): void {
    if (scores.length !== this.numItems) {
      throw new MetricsError(`RankingAccumulator.add: scores has ${scores.length} entries but the catalogue has ${this.numItems} items; pass one score per item`);
    }
    if (grades !== undefined && grades.length !== relevant.length) {
      throw new MetricsError(`RankingAccumulator.add: ${grades.length} grades for ${relevant.length} relevant items`);
    }
    this.#checkIds(seen, 'seen');
    this.#checkIds(relevant, 'relevant');
    const rel: Relevance = grades === undefined ? new Set(relevant) : new Map(Array.from(relevant, (item, i) => [item, grades[i]] as const));
    let best = -1;
    for (let i = 0; i < relevant.length; i++) {
      if (grades !== undefined && !(grades[i] > 0)) continue;
      const it = relevant[i];
      if (best < 0 || rankedBefore(scores, it, best)) best = it;
    }
    if (best < 0) {
      this.#skipped++;
      return;
    }
    const top = topK(scores, this.#kMax, seen);
    for (let i = 0; i < top.length; i++) if (i < this.#bestPos[top[i]]) this.#bestPos[top[i]] = i;
    const w = PER_K.length;
    this.ks.forEach((k, j) => {
      const p = precisionAt(top, rel, k);
      const r = recallAt(top, rel, k);
      const nd = ndcgAt(top, rel, k, { gain: this.#gain });
      const ap = averagePrecisionAt(top, rel, k);
      let first = 0;
      const m = Math.min(k, top.length);
      for (let i = 0; i < m; i++) {
        if (isRelevant(rel, top[i])) {
          first = 1 / (i + 1);
          break;
        }
      }
      this.#sums[j * w] += p;
      this.#sums[j * w + 1] += r;
      this.#sums[j * w + 2] += nd;
      this.#sums[j * w + 3] += ap;
      this.#sums[j * w + 4] += first > 0 ? 1 : 0;
      this.#sums[j * w + 5] += first;
    });
    // MRR over the whole catalogue, not just the top Kmax: rank of the best relevant item.
    this.#mrr += 1 / rankOf(scores, best, seen);
    this.#users++;
  }

  /**
   * A batch of users: `scores` is rows × numItems (row-major, e.g. a model's scoreItems output),
   * `seen` and `heldOut` hold one CSR row per user in the same order (heldOut.values = grades).
   */
  addRows(scores: Scores, seen: CsrRows | undefined, heldOut: CsrRows): void {
    const rows = heldOut.offsets.length - 1;
    if (rows < 0 || scores.length !== rows * this.numItems) {
      throw new MetricsError(`RankingAccumulator.addRows: ${scores.length} scores for ${Math.max(rows, 0)} users × ${this.numItems} items`);
    }
    if (seen !== undefined && seen.offsets.length !== heldOut.offsets.length) {
      throw new MetricsError(`RankingAccumulator.addRows: seen has ${seen.offsets.length - 1} rows but heldOut has ${rows}`);
    }
    for (let r = 0; r < rows; r++) {
      const row = scores.subarray(r * this.numItems, (r + 1) * this.numItems);
      const s = seen === undefined ? undefined : seen.items.subarray(seen.offsets[r], seen.offsets[r + 1]);
      const a = heldOut.offsets[r];
      const b = heldOut.offsets[r + 1];
      this.add(row, s, heldOut.items.subarray(a, b), heldOut.values?.subarray(a, b));
    }
  }

  /** Folds another accumulator (same numItems and ks) into this one: evaluation sharded over processes. */
  merge(other: RankingAccumulator): void {
    if (other.numItems !== this.numItems || other.ks.join() !== this.ks.join()) {
      throw new MetricsError(`RankingAccumulator.merge: shapes differ (${other.numItems} items, ks ${other.ks.join()} vs ${this.numItems}, ${this.ks.join()})`);
    }
    const o = other.#sums;
    for (let i = 0; i < o.length; i++) this.#sums[i] += o[i];
    const ob = other.#bestPos;
    for (let i = 0; i < ob.length; i++) if (ob[i] < this.#bestPos[i]) this.#bestPos[i] = ob[i];
    this.#mrr += other.#mrr;
    this.#users += other.#users;
    this.#skipped += other.#skipped;
  }

  get users(): number {
    return this.#users;
  }

  get skipped(): number {
    return this.#skipped;
  }

  result(): RankingResult {
    const metrics: Record<string, number> = {};
    const n = this.#users;
    const w = PER_K.length;
    this.ks.forEach((k, j) => {
      PER_K.forEach((name, m) => {
        metrics[`${name}@${k}`] = n === 0 ? Number.NaN : this.#sums[j * w + m] / n;
      });
      let covered = 0;
      for (let i = 0; i < this.numItems; i++) if (this.#bestPos[i] < k) covered++;
      metrics[`coverage@${k}`] = n === 0 ? Number.NaN : covered / this.numItems;
    });
    metrics.mrr = n === 0 ? Number.NaN : this.#mrr / n;
    return { users: n, skipped: this.#skipped, metrics };
  }

  #checkIds(ids: Int32Array | undefined, what: string): void {
    if (ids === undefined) return;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= this.numItems) {
        throw new MetricsError(`RankingAccumulator.add: ${what} item ${ids[i]} is outside the catalogue of ${this.numItems} items`);
      }
    }
  }
}

function isRelevant(rel: Relevance, item: number): boolean {
  return rel instanceof Map ? (rel.get(item) ?? 0) > 0 : rel.has(item);
}
