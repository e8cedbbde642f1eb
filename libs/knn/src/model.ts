// The kNN rating predictor (no baseline predictors: Herlocker et al. 1999 / Sarwar et al. 2001
// style, as in Surprise's KNNBasic / KNNWithMeans / KNNWithZScore), on neighbour lists computed
// by similarity.ts. For (user u, item i), item-based:
//   N = the first k neighbours j of i (best first, among the kMax kept) that u has rated
//   none:   r̂ = Σ s_ij r_uj / Σ |s_ij|
//   mean:   r̂ = μ_i + Σ s_ij (r_uj − μ_j) / Σ |s_ij|
//   zscore: r̂ = μ_i + σ_i · Σ s_ij (r_uj − μ_j)/σ_j / Σ |s_ij|
// User-based is the same with users: neighbours v of u that rated i, base μ_u, σ_u.
// No usable neighbour (or an id never seen in training): the row's own mean (item mean for
// item-based, user mean for user-based), else the other side's mean, else the global mean.
// Taking the first k *rated* neighbours among kMax (not the k nearest, then intersecting) is why
// kMax should be several times k: at ML-20M density a user has rated few of an item's 40 nearest.
import type { Ratings } from '@actorflow/data';
import { csrGet } from './csr.ts';
import { KnnError } from './errors.ts';
import { computeBlock, mergeBlocks, planBlocks, prepareKnn, resolveSimilarityOptions, type KnnData, type Neighbours, type SimilarityOptions } from './similarity.ts';

export type Normalize = 'none' | 'mean' | 'zscore';

export interface KnnOptions extends SimilarityOptions {
  /** Rating normalisation in the prediction (default 'mean'). */
  readonly normalize?: Normalize;
  /** Neighbours used per prediction (default 40); must be <= kMax. */
  readonly k?: number;
  /** Clip predictions to [min, max] (e.g. [0.5, 5] for MovieLens); default no clipping. */
  readonly clip?: readonly [number, number];
}

export interface FitOptions {
  readonly numUsers?: number;
  readonly numItems?: number;
  /** Blocks the local computation is split into (default 1; results are identical). */
  readonly blocks?: number;
}

/** What scoreItems returns per item: the sum of similarities to the user's items (top-N, Deshpande & Karypis 2004) or the predicted rating. */
export type ScoreMode = 'sum' | 'rating';

export interface ScoreOptions {
  /** The training user (required for user-based kNN, whose neighbours are per user). */
  readonly user?: number;
  readonly mode?: ScoreMode;
  readonly k?: number;
}

export interface SweepPoint {
  readonly k: number;
  readonly rmse: number;
  readonly mae: number;
}

export class KnnModel {
  readonly data: KnnData;
  readonly neighbours: Neighbours;
  readonly kind: 'user' | 'item';
  readonly normalize: Normalize;
  readonly k: number;
  readonly #clip: readonly [number, number] | undefined;
  // Item-based scoreItems: for item j, the items i whose neighbour lists contain j (built on first use).
  #reverse: { offsets: Int32Array; rows: Int32Array } | undefined;

  constructor(data: KnnData, options: KnnOptions, neighbours: Neighbours) {
    const o = resolveSimilarityOptions(options);
    const normalize = options.normalize ?? 'mean';
    if (normalize !== 'none' && normalize !== 'mean' && normalize !== 'zscore') throw new KnnError(`normalize must be 'none', 'mean' or 'zscore', got '${String(normalize)}'`);
    const rows = o.kind === 'item' ? data.numItems : data.numUsers;
    if (neighbours.numRows !== rows) throw new KnnError(`neighbour lists have ${neighbours.numRows} rows but the data has ${rows} ${o.kind}s`);
    const k = options.k ?? 40;
    this.#checkK(k, neighbours.kMax);
    if (options.clip !== undefined && !(options.clip[0] <= options.clip[1])) throw new KnnError(`clip must be [min, max] with min <= max, got [${options.clip.join(', ')}]`);
    this.data = data;
    this.neighbours = neighbours;
    this.kind = o.kind;
    this.normalize = normalize;
    this.k = k;
    this.#clip = options.clip;
  }

  /** Prepares the data and computes every similarity block in this process. */
  static fit(ratings: Ratings, options: KnnOptions, fit: FitOptions = {}): KnnModel {
    const data = prepareKnn(ratings, fit);
    const o = resolveSimilarityOptions(options);
    const rows = o.kind === 'item' ? data.numItems : data.numUsers;
    const blocks = planBlocks(rows, fit.blocks ?? 1).map((b) => computeBlock(data, options, b));
    return new KnnModel(data, { ...options, kMax: o.kMax }, mergeBlocks(blocks, rows));
  }

  #checkK(k: number, kMax: number): void {
    if (!Number.isInteger(k) || k < 1 || k > kMax) throw new KnnError(`k must be an integer in 1…kMax (${kMax}), got ${k}; raise kMax when computing similarities`);
  }

  #knownUser(u: number): boolean {
    return u >= 0 && u < this.data.numUsers && this.data.byUser.offsets[u + 1] > this.data.byUser.offsets[u];
  }

  #knownItem(i: number): boolean {
    return i >= 0 && i < this.data.numItems && this.data.byItem.offsets[i + 1] > this.data.byItem.offsets[i];
  }

  #fallback(u: number, i: number): number {
    const d = this.data;
    const [first, second] =
      this.kind === 'item'
        ? [this.#knownItem(i) ? d.itemMean[i] : Number.NaN, this.#knownUser(u) ? d.userMean[u] : Number.NaN]
        : [this.#knownUser(u) ? d.userMean[u] : Number.NaN, this.#knownItem(i) ? d.itemMean[i] : Number.NaN];
    return first === first ? first : second === second ? second : d.globalMean;
  }

  #clipped(x: number): number {
    return this.#clip === undefined ? x : Math.min(this.#clip[1], Math.max(this.#clip[0], x));
  }

  /** Deviation of a neighbour's rating under the normalisation (neighbour = item j or user v). */
  #dev(r: number, nb: number): number {
    if (this.normalize === 'none') return r;
    const mean = this.kind === 'item' ? this.data.itemMean : this.data.userMean;
    const std = this.kind === 'item' ? this.data.itemStd : this.data.userStd;
    return this.normalize === 'mean' ? r - mean[nb] : (r - mean[nb]) / std[nb];
  }

  /** Prediction from Σ s·dev and Σ |s| for target row t; fallback when den is 0. */
  #combine(u: number, i: number, num: number, den: number): number {
    if (!(den > 0)) return this.#clipped(this.#fallback(u, i));
    if (this.normalize === 'none') return this.#clipped(num / den);
    const t = this.kind === 'item' ? i : u;
    const mean = this.kind === 'item' ? this.data.itemMean : this.data.userMean;
    const std = this.kind === 'item' ? this.data.itemStd : this.data.userStd;
    return this.#clipped(mean[t] + (this.normalize === 'zscore' ? std[t] : 1) * (num / den));
  }

  /**
   * Walks the target row's neighbours best first, keeping those with a rating, and records
   * Σ s·dev and Σ |s| after the first ks[j] of them (or all there are) in num[j], den[j].
   * `ks` ascending. One pass serves every k: this is what makes sweepK cheap.
   */
  #accumulate(u: number, i: number, ks: ArrayLike<number>, num: Float64Array, den: Float64Array): void {
    const nb = this.neighbours;
    const t = this.kind === 'item' ? i : u;
    let n = 0;
    let sn = 0;
    let sd = 0;
    let j = 0;
    if (t >= 0 && t < nb.numRows && this.#knownUser(u) && this.#knownItem(i)) {
      const kLast = ks[ks.length - 1];
      for (let p = nb.offsets[t]; p < nb.offsets[t + 1] && n < kLast; p++) {
        const other = nb.neighbors[p];
        const r = this.kind === 'item' ? csrGet(this.data.byUser, u, other) : csrGet(this.data.byUser, other, i);
        if (r !== r) continue;
        const s = nb.sims[p];
        sn += s * this.#dev(r, other);
        sd += Math.abs(s);
        n++;
        while (j < ks.length && n === ks[j]) {
          num[j] = sn;
          den[j] = sd;
          j++;
        }
      }
    }
    for (; j < ks.length; j++) {
      num[j] = sn;
      den[j] = sd;
    }
  }

  /** Predicted rating of (user, item) from up to k neighbours (default this.k). */
  predict(user: number, item: number, k: number = this.k): number {
    this.#checkK(k, this.neighbours.kMax);
    const num = new Float64Array(1);
    const den = new Float64Array(1);
    this.#accumulate(user, item, [k], num, den);
    return this.#combine(user, item, num[0], den[0]);
  }

  /** predict for each (users[r], items[r]). */
  predictBatch(users: Int32Array, items: Int32Array, k: number = this.k): Float32Array {
    if (users.length !== items.length) throw new KnnError(`predictBatch: ${users.length} users for ${items.length} items`);
    this.#checkK(k, this.neighbours.kMax);
    const out = new Float32Array(users.length);
    const num = new Float64Array(1);
    const den = new Float64Array(1);
    const ks = [k];
    for (let r = 0; r < users.length; r++) {
      this.#accumulate(users[r], items[r], ks, num, den);
      out[r] = this.#combine(users[r], items[r], num[0], den[0]);
    }
    return out;
  }

  /**
   * RMSE and MAE on `test` for every k in `ks` (each <= kMax), reading each pair's neighbour
   * list once: predictions for all ks come from prefix sums of the same walk.
   */
  sweepK(test: Ratings, ks: readonly number[]): SweepPoint[] {
    if (ks.length === 0) throw new KnnError('sweepK: ks is empty; pass the k values to try, e.g. [10, 20, 40, 80]');
    for (const k of ks) this.#checkK(k, this.neighbours.kMax);
    const sorted = [...new Set(ks)].sort((a, b) => a - b);
    const num = new Float64Array(sorted.length);
    const den = new Float64Array(sorted.length);
    const se = new Float64Array(sorted.length);
    const ae = new Float64Array(sorted.length);
    for (let r = 0; r < test.length; r++) {
      const u = test.user[r];
      const i = test.item[r];
      this.#accumulate(u, i, sorted, num, den);
      for (let j = 0; j < sorted.length; j++) {
        const e = this.#combine(u, i, num[j], den[j]) - test.rating[r];
        se[j] += e * e;
        ae[j] += Math.abs(e);
      }
    }
    return ks.map((k) => {
      const j = sorted.indexOf(k);
      return { k, rmse: Math.sqrt(se[j] / test.length), mae: ae[j] / test.length };
    });
  }

  #reverseIndex(): { offsets: Int32Array; rows: Int32Array } {
    if (this.#reverse !== undefined) return this.#reverse;
    const nb = this.neighbours;
    const offsets = new Int32Array(nb.numRows + 1);
    for (let p = 0; p < nb.neighbors.length; p++) offsets[nb.neighbors[p] + 1]++;
    for (let r = 0; r < nb.numRows; r++) offsets[r + 1] += offsets[r];
    const fill = offsets.slice(0, nb.numRows);
    const rows = new Int32Array(nb.neighbors.length);
    for (let r = 0; r < nb.numRows; r++) for (let p = nb.offsets[r]; p < nb.offsets[r + 1]; p++) rows[fill[nb.neighbors[p]]++] = r;
    this.#reverse = { offsets, rows };
    return this.#reverse;
  }

  /**
   * Scores of every item for one user, for top-N (e.g. topK from @actorflow/metrics, excluding
   * the history). Item-based: `history` is the user's items (and ratings; implicit = 1), so a
   * user unseen in training can be scored (fold-in). User-based: the neighbours belong to a
   * training user, so `options.user` is required and `history` is ignored.
   * mode 'sum' (default): Σ of the similarities of the first k neighbours that have the item.
   * mode 'rating': the predicted rating (fallback means for items without neighbours).
   */
  scoreItems(history: { items: Int32Array; values?: Float32Array }, options: ScoreOptions = {}): Float32Array {
    const k = options.k ?? this.k;
    this.#checkK(k, this.neighbours.kMax);
    const mode = options.mode ?? 'sum';
    const d = this.data;
    const nb = this.neighbours;
    const out = new Float32Array(d.numItems);
    const num = new Float64Array(d.numItems);
    const den = new Float64Array(d.numItems);
    if (this.kind === 'item') {
      if (history.values !== undefined && history.values.length !== history.items.length) throw new KnnError(`scoreItems: ${history.values.length} values for ${history.items.length} items`);
      const hv = new Float32Array(d.numItems).fill(Number.NaN);
      for (let h = 0; h < history.items.length; h++) {
        const j = history.items[h];
        if (j < 0 || j >= d.numItems) throw new KnnError(`scoreItems: history item ${j} is outside the ${d.numItems} items`);
        hv[j] = history.values === undefined ? 1 : history.values[h];
      }
      // Only items that list some history item as a neighbour can score; find them by reverse index.
      const rev = this.#reverseIndex();
      const touched = new Uint8Array(d.numItems);
      for (let h = 0; h < history.items.length; h++) {
        const j = history.items[h];
        for (let p = rev.offsets[j]; p < rev.offsets[j + 1]; p++) touched[rev.rows[p]] = 1;
      }
      for (let i = 0; i < d.numItems; i++) {
        if (touched[i] === 0) continue;
        let n = 0;
        for (let p = nb.offsets[i]; p < nb.offsets[i + 1] && n < k; p++) {
          const j = nb.neighbors[p];
          const r = hv[j];
          if (r !== r) continue;
          num[i] += nb.sims[p] * this.#dev(r, j);
          den[i] += Math.abs(nb.sims[p]);
          out[i] += nb.sims[p];
          n++;
        }
      }
    } else {
      const u = options.user;
      if (u === undefined || !Number.isInteger(u) || u < 0 || u >= d.numUsers) {
        throw new KnnError(`scoreItems: user-based kNN scores a training user; pass options.user in 0…${d.numUsers - 1} (got ${String(u)})`);
      }
      // Neighbours best first; each item takes the first k of them that rated it.
      const count = new Int32Array(d.numItems);
      for (let p = nb.offsets[u]; p < nb.offsets[u + 1]; p++) {
        const v = nb.neighbors[p];
        const s = nb.sims[p];
        for (let q = d.byUser.offsets[v]; q < d.byUser.offsets[v + 1]; q++) {
          const i = d.byUser.cols[q];
          if (count[i] >= k) continue;
          count[i]++;
          num[i] += s * this.#dev(d.byUser.values[q], v);
          den[i] += Math.abs(s);
          out[i] += s;
        }
      }
    }
    if (mode === 'rating') {
      const u = options.user ?? -1;
      for (let i = 0; i < d.numItems; i++) out[i] = this.#combineFor(u, i, num[i], den[i], history);
    } else if (mode !== 'sum') {
      throw new KnnError(`scoreItems: mode must be 'sum' or 'rating', got '${String(mode)}'`);
    }
    return out;
  }

  // Item-based rating scores for a history that may not be a training user: the fallback uses the
  // history's own mean instead of a training user's mean.
  #combineFor(u: number, i: number, num: number, den: number, history: { items: Int32Array; values?: Float32Array }): number {
    if (den > 0 || this.kind === 'user' || this.#knownItem(i) || this.#knownUser(u) || history.items.length === 0) return this.#combine(u, i, num, den);
    let s = 0;
    for (let h = 0; h < history.items.length; h++) s += history.values === undefined ? 1 : history.values[h];
    return this.#clipped(s / history.items.length);
  }
}
