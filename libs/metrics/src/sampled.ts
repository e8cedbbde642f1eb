// Sampled-candidates protocol of NCF (He et al. 2017): each user's one held-out item is ranked
// among `negatives` (99 by default) items the user never interacted with; HR@K is 1 when the
// held-out item lands in the top K of those 100 candidates and NDCG@K is 1/log2(rank + 1).
// Cheap (100 scores per user instead of the catalogue), but it overstates quality compared with
// full ranking (Krichene & Rendle 2020), so report which protocol produced a number.
//
// Negatives are drawn deterministically from (seed, user), so every evaluator process and every
// re-run ranks against the same candidates.
import { Rng, deriveSeed } from '@actorflow/data';
import { MetricsError } from './regression.ts';
import { rankedBefore, type Scores } from './topk.ts';

export interface NegativeOptions {
  readonly numItems: number;
  /** How many negatives (default 99). */
  readonly count?: number;
  readonly seed: number;
}

/**
 * `count` distinct items drawn uniformly from the catalogue minus `seen` and `heldOut`, from a
 * stream derived from (seed, user). Throws when fewer than `count` such items exist.
 */
export function sampleNegatives(user: number, heldOut: number, seen: Int32Array | undefined, o: NegativeOptions): Int32Array {
  const count = o.count ?? 99;
  const { numItems } = o;
  if (!Number.isInteger(count) || count < 1) throw new MetricsError(`sampleNegatives: count must be an integer >= 1, got ${count}`);
  if (!Number.isInteger(heldOut) || heldOut < 0 || heldOut >= numItems) {
    throw new MetricsError(`sampleNegatives: held-out item ${heldOut} of user ${user} is outside the catalogue of ${numItems} items`);
  }
  const banned = new Set<number>(seen ?? []);
  banned.add(heldOut);
  const available = numItems - banned.size;
  if (available < count) {
    throw new MetricsError(`sampleNegatives: user ${user} has only ${available} unseen items but ${count} negatives were asked for; lower the count or drop users who have seen nearly everything`);
  }
  const rng = new Rng(deriveSeed(o.seed, 'negatives', user));
  const out = new Int32Array(count);
  if (available < 2 * count) {
    // Dense case: rejection sampling would spin, so list the candidates and take a partial shuffle.
    const pool = new Int32Array(available);
    let p = 0;
    for (let i = 0; i < numItems; i++) if (!banned.has(i)) pool[p++] = i;
    for (let i = 0; i < count; i++) {
      const j = i + rng.nextInt(available - i);
      const t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
      out[i] = pool[i];
    }
    return out;
  }
  // Sparse case (the usual one: a user has seen a small part of the catalogue): rejection.
  let n = 0;
  while (n < count) {
    const i = rng.nextInt(numItems);
    if (banned.has(i)) continue;
    banned.add(i);
    out[n++] = i;
  }
  return out;
}

/** The candidate list scored for one user: the held-out item first, then the negatives. */
export function sampledCandidates(heldOut: number, negatives: Int32Array): Int32Array {
  const c = new Int32Array(negatives.length + 1);
  c[0] = heldOut;
  c.set(negatives, 1);
  return c;
}

export interface SampledResult {
  /** 1-based rank of the held-out item among the candidates. */
  readonly rank: number;
  /** `hr@K` and `ndcg@K` for each K. */
  readonly metrics: Record<string, number>;
}

/**
 * Ranks candidates[0] (the held-out item) among `candidates` given their scores (aligned with
 * candidates, or a function that scores them). Ties: lower item id first, as in topK.
 */
export function sampledRanking(candidates: Int32Array, scores: Scores | ((items: Int32Array) => Scores), ks: readonly number[] = [10]): SampledResult {
  if (candidates.length < 1) throw new MetricsError('sampledRanking: no candidates; pass the held-out item followed by its negatives');
  const s = typeof scores === 'function' ? scores(candidates) : scores;
  if (s.length !== candidates.length) throw new MetricsError(`sampledRanking: ${s.length} scores for ${candidates.length} candidates`);
  // Scores are positional; rankedBefore compares by index, so map the tie rule onto item ids.
  let rank = 1;
  for (let i = 1; i < candidates.length; i++) {
    const before = s[i] === s[0] || (s[i] !== s[i] && s[0] !== s[0]) ? candidates[i] < candidates[0] : rankedBefore(s, i, 0);
    if (before) rank++;
  }
  const metrics: Record<string, number> = {};
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new MetricsError(`sampledRanking: K must be an integer >= 1, got ${k}`);
    metrics[`hr@${k}`] = rank <= k ? 1 : 0;
    metrics[`ndcg@${k}`] = rank <= k ? 1 / Math.log2(rank + 1) : 0;
  }
  return { rank, metrics };
}

export interface SampledAccumulatorOptions extends NegativeOptions {
  /** Cut-offs (default [1, 5, 10]: NCF reports HR@10 and NDCG@10). */
  readonly ks?: readonly number[];
}

/** Means of HR@K and NDCG@K over users under the sampled protocol. */
export class SampledRankingAccumulator {
  readonly ks: readonly number[];
  readonly #o: SampledAccumulatorOptions;
  readonly #sums = new Map<string, number>();
  #users = 0;

  constructor(options: SampledAccumulatorOptions) {
    if (!Number.isInteger(options.numItems) || options.numItems < 2) throw new MetricsError(`SampledRankingAccumulator: numItems must be an integer >= 2, got ${options.numItems}`);
    this.ks = [...(options.ks ?? [1, 5, 10])];
    this.#o = options;
  }

  /** The candidates to score for this user (held-out first); deterministic in (seed, user). */
  candidates(user: number, heldOut: number, seen: Int32Array | undefined): Int32Array {
    return sampledCandidates(heldOut, sampleNegatives(user, heldOut, seen, this.#o));
  }

  /** Adds one user's result; `scores` aligned with `candidates` (or a scoring function). Returns that user's result. */
  add(candidates: Int32Array, scores: Scores | ((items: Int32Array) => Scores)): SampledResult {
    const r = sampledRanking(candidates, scores, this.ks);
    for (const [key, v] of Object.entries(r.metrics)) this.#sums.set(key, (this.#sums.get(key) ?? 0) + v);
    this.#users++;
    return r;
  }

  get users(): number {
    return this.#users;
  }

  /** Means over users (NaN when no user was added). */
  result(): { users: number; metrics: Record<string, number> } {
    const metrics: Record<string, number> = {};
    for (const k of this.ks) {
      for (const name of ['hr', 'ndcg']) {
        const key = `${name}@${k}`;
        metrics[key] = this.#users === 0 ? Number.NaN : (this.#sums.get(key) ?? 0) / this.#users;
      }
    }
    return { users: this.#users, metrics };
  }
}
