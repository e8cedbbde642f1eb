// Ranking metrics of one user's ranked list against that user's relevant (held-out) items.
// Pure functions: `ranked` is item ids best first (e.g. from topK), `relevant` is a Set (binary
// relevance) or a Map item → grade (graded relevance; an item is relevant when its grade > 0).
// Every metric looks at the first K positions only; a list shorter than K (K larger than the
// catalogue, or many items excluded) is simply scored on what it has.
import { MetricsError } from './regression.ts';

export type Relevance = ReadonlySet<number> | ReadonlyMap<number, number>;

/** Gain of a grade in DCG: `linear` uses the grade, `exponential` 2^grade − 1 (Burges et al. 2005). Binary relevance gives 1 for both. */
export type Gain = 'linear' | 'exponential';

export interface NdcgOptions {
  readonly gain?: Gain;
}

function checkK(k: number, where: string): void {
  if (!Number.isInteger(k) || k < 1) throw new MetricsError(`${where}: K must be an integer >= 1, got ${k}`);
}

function isGraded(rel: Relevance): rel is ReadonlyMap<number, number> {
  return rel instanceof Map;
}

/** Grade of an item: 1/0 for a Set, the Map's grade (0 when absent) for graded relevance. */
function grade(rel: Relevance, item: number): number {
  if (isGraded(rel)) return rel.get(item) ?? 0;
  return rel.has(item) ? 1 : 0;
}

/** Number of relevant items (grade > 0). Grades must be finite and >= 0. */
export function relevantCount(rel: Relevance): number {
  if (!isGraded(rel)) return rel.size;
  let n = 0;
  for (const [item, g] of rel) {
    if (!Number.isFinite(g) || g < 0) throw new MetricsError(`relevance grade of item ${item} is ${g}; grades must be finite and >= 0`);
    if (g > 0) n++;
  }
  return n;
}

function gainOf(g: number, gain: Gain): number {
  return gain === 'exponential' ? Math.pow(2, g) - 1 : g;
}

/** Number of relevant items among the first K ranked. */
export function hitsAt(ranked: Int32Array, relevant: Relevance, k: number): number {
  checkK(k, 'hitsAt');
  const m = Math.min(k, ranked.length);
  let h = 0;
  for (let i = 0; i < m; i++) if (grade(relevant, ranked[i]) > 0) h++;
  return h;
}

/** Precision@K = hits in the top K / K (K, not the list length: a short list is not rewarded). */
export function precisionAt(ranked: Int32Array, relevant: Relevance, k: number): number {
  return hitsAt(ranked, relevant, k) / k;
}

/**
 * Recall@K = hits in the top K / min(K, #relevant), as in Liang et al. 2018 (Mult-VAE), so a user
 * with more relevant items than K can still reach 1. NaN when nothing is relevant.
 */
export function recallAt(ranked: Int32Array, relevant: Relevance, k: number): number {
  const n = relevantCount(relevant);
  const h = hitsAt(ranked, relevant, k);
  return n === 0 ? Number.NaN : h / Math.min(k, n);
}

/** HR@K: 1 when at least one relevant item is in the top K, else 0 (NaN when nothing is relevant). */
export function hitRateAt(ranked: Int32Array, relevant: Relevance, k: number): number {
  if (relevantCount(relevant) === 0) return Number.NaN;
  return hitsAt(ranked, relevant, k) > 0 ? 1 : 0;
}

/**
 * AP@K = Σ over ranks i ≤ K holding a relevant item of Precision@i, divided by min(K, #relevant)
 * (the usual MAP@K normalisation, so a perfect top K scores 1). MAP@K is its mean over users.
 */
export function averagePrecisionAt(ranked: Int32Array, relevant: Relevance, k: number): number {
  checkK(k, 'averagePrecisionAt');
  const n = relevantCount(relevant);
  if (n === 0) return Number.NaN;
  const m = Math.min(k, ranked.length);
  let hits = 0;
  let sum = 0;
  for (let i = 0; i < m; i++) {
    if (grade(relevant, ranked[i]) > 0) {
      hits++;
      sum += hits / (i + 1);
    }
  }
  return sum / Math.min(k, n);
}

/**
 * Reciprocal rank truncated at K: 1/rank of the first relevant item if it is within the top K,
 * else 0. With one held-out item per user its mean is ARHR@K (Deshpande & Karypis 2004); with
 * K = the list length it is MRR.
 */
export function reciprocalRankAt(ranked: Int32Array, relevant: Relevance, k: number = ranked.length || 1): number {
  checkK(k, 'reciprocalRankAt');
  if (relevantCount(relevant) === 0) return Number.NaN;
  const m = Math.min(k, ranked.length);
  for (let i = 0; i < m; i++) if (grade(relevant, ranked[i]) > 0) return 1 / (i + 1);
  return 0;
}

/** Ideal DCG@K: the K largest gains in order. */
function idealDcg(relevant: Relevance, k: number, gain: Gain): number {
  let grades: number[];
  if (isGraded(relevant)) {
    grades = [];
    for (const g of relevant.values()) if (g > 0) grades.push(g);
    grades.sort((a, b) => b - a);
  } else {
    grades = new Array<number>(relevant.size).fill(1);
  }
  let idcg = 0;
  const m = Math.min(k, grades.length);
  for (let i = 0; i < m; i++) idcg += gainOf(grades[i], gain) / Math.log2(i + 2);
  return idcg;
}

/**
 * NDCG@K = DCG@K / IDCG@K with DCG = Σ_{i<K} gain(grade(ranked[i])) / log2(i + 2) (rank 1 has
 * discount 1). Binary relevance: gain 1. Graded: `gain` linear (default) or exponential.
 * NaN when nothing is relevant.
 */
export function ndcgAt(ranked: Int32Array, relevant: Relevance, k: number, options: NdcgOptions = {}): number {
  checkK(k, 'ndcgAt');
  const gain = options.gain ?? 'linear';
  if (relevantCount(relevant) === 0) return Number.NaN;
  const m = Math.min(k, ranked.length);
  let dcg = 0;
  for (let i = 0; i < m; i++) {
    const g = grade(relevant, ranked[i]);
    if (g > 0) dcg += gainOf(g, gain) / Math.log2(i + 2);
  }
  return dcg / idealDcg(relevant, k, gain);
}

/**
 * Catalogue coverage@K: the fraction of the catalogue's items that appear in at least one
 * user's top K (a popularity-only recommender covers ~K / numItems).
 */
export function catalogueCoverage(lists: Iterable<Int32Array>, numItems: number, k: number): number {
  checkK(k, 'catalogueCoverage');
  if (!Number.isInteger(numItems) || numItems < 1) throw new MetricsError(`catalogueCoverage: numItems must be an integer >= 1, got ${numItems}`);
  const seen = new Uint8Array(numItems);
  let covered = 0;
  for (const list of lists) {
    const m = Math.min(k, list.length);
    for (let i = 0; i < m; i++) {
      const item = list[i];
      if (item < 0 || item >= numItems) throw new MetricsError(`catalogueCoverage: item ${item} is outside the catalogue of ${numItems}`);
      if (seen[item] === 0) {
        seen[item] = 1;
        covered++;
      }
    }
  }
  return covered / numItems;
}
