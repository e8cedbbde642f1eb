// Synthetic data: the embedded default dataset. Ratings come from a known low-rank model plus
// Gaussian noise of a known σ, so the best achievable RMSE is known (the "noise floor") and a
// trained model can be judged against it. Popularity is skewed (Zipf) like real catalogues.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { RatingsBuilder } from './columns.ts';
import { DataError } from './errors.ts';
import { Rng, deriveSeed } from './random.ts';
import { lowerBound } from './search.ts';
import type { Ratings } from './types.ts';

export interface LowRankOptions {
  readonly users: number;
  readonly items: number;
  /** Average ratings per user. */
  readonly perUser: number;
  readonly rank?: number;
  /** Noise σ (default 0.5). */
  readonly noise?: number;
  /** Zipf exponent of item popularity (default 0.8; 0 = uniform). */
  readonly itemSkew?: number;
  /** Spread of user activity (log-normal σ, default 0.5). */
  readonly userSkew?: number;
  readonly mean?: number;
  /** Clip ratings to this range (then the floor is the empirical one, reported in truth). */
  readonly clip?: readonly [number, number];
  readonly seed: number;
  readonly withTimestamps?: boolean;
}

export interface SyntheticRatings {
  readonly ratings: Ratings;
  readonly numUsers: number;
  readonly numItems: number;
  readonly truth: {
    readonly noiseSigma: number;
    /** RMSE of the noiseless model on the generated ratings: the best any model can do on them. */
    readonly floorRmse: number;
    readonly rank: number;
  };
}

export const SYNTHETIC_SIZES = {
  tiny: { users: 100, items: 80, perUser: 20 },
  small: { users: 1000, items: 1700, perUser: 100 },
  medium: { users: 6040, items: 3700, perUser: 165 },
  ml20m: { users: 138_000, items: 27_000, perUser: 145 },
} as const;

export type SyntheticSize = keyof typeof SYNTHETIC_SIZES;

/** Cumulative Zipf weights over n ranks; items are shuffled so popularity is not id order. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += 1 / Math.pow(i + 1, s);
    cdf[i] = acc;
  }
  for (let i = 0; i < n; i++) cdf[i] /= acc;
  return cdf;
}

function sampleCdf(cdf: Float64Array, u: number): number {
  // The last bucket also takes u beyond cdf's end (rounding: the CDF may end a hair below 1).
  return Math.min(lowerBound(cdf, u), cdf.length - 1);
}

export function lowRankRatings(o: LowRankOptions): SyntheticRatings {
  const rank = o.rank ?? 8;
  const noise = o.noise ?? 0.5;
  const mean = o.mean ?? 3.5;
  if (o.users < 1 || o.items < 1 || o.perUser < 1) throw new DataError('synthetic data needs users, items and perUser >= 1');
  if (o.perUser > o.items) throw new DataError(`perUser (${o.perUser}) cannot exceed items (${o.items}) without duplicate pairs`);
  const rng = new Rng(deriveSeed(o.seed, 'lowrank'));
  // Factor scale so that the interaction term has variance ~0.5 whatever the rank.
  const s = Math.sqrt(Math.sqrt(0.5 / rank));
  const P = new Float32Array(o.users * rank).map(() => rng.normal() * s);
  const Q = new Float32Array(o.items * rank).map(() => rng.normal() * s);
  const bu = new Float32Array(o.users).map(() => rng.normal() * 0.3);
  const bi = new Float32Array(o.items).map(() => rng.normal() * 0.3);
  const popularity = rng.permutation(o.items);
  const cdf = zipfCdf(o.items, o.itemSkew ?? 0.8);
  const userSkew = o.userSkew ?? 0.5;
  const builder = new RatingsBuilder(o.withTimestamps === true, o.users * o.perUser);
  let sqErr = 0;
  const seen = new Set<number>();
  for (let u = 0; u < o.users; u++) {
    const activity = Math.exp(rng.normal() * userSkew - (userSkew * userSkew) / 2);
    const count = Math.max(1, Math.min(o.items, Math.round(o.perUser * activity)));
    seen.clear();
    let guard = 0;
    while (seen.size < count && guard++ < count * 50) {
      const item = popularity[sampleCdf(cdf, rng.nextFloat())];
      if (seen.has(item)) continue;
      seen.add(item);
      let dot = 0;
      for (let k = 0; k < rank; k++) dot += P[u * rank + k] * Q[item * rank + k];
      const clean = mean + bu[u] + bi[item] + dot;
      let value = clean + rng.normal() * noise;
      if (o.clip !== undefined) value = Math.min(o.clip[1], Math.max(o.clip[0], value));
      const stored = Math.fround(value);
      sqErr += (stored - clean) * (stored - clean);
      builder.push(u, item, stored, o.withTimestamps === true ? 1_000_000_000 + builder.length : 0);
    }
  }
  const ratings = builder.build();
  return { ratings, numUsers: o.users, numItems: o.items, truth: { noiseSigma: noise, floorRmse: Math.sqrt(sqErr / ratings.length), rank } };
}

/** A named size (tiny, small, medium, ml20m) of the default low-rank generator. */
export function syntheticRatings(size: SyntheticSize, seed: number, overrides: Partial<LowRankOptions> = {}): SyntheticRatings {
  const base = SYNTHETIC_SIZES[size];
  if (base === undefined) throw new DataError(`unknown synthetic size '${size}'; use ${Object.keys(SYNTHETIC_SIZES).join(', ')}`);
  return lowRankRatings({ ...base, seed, withTimestamps: true, ...overrides });
}

export interface ImplicitOptions {
  readonly users: number;
  readonly items: number;
  readonly perUser: number;
  readonly rank?: number;
  readonly itemSkew?: number;
  readonly seed: number;
}

/**
 * Implicit clicks: each user clicks the items that score highest under a hidden low-rank
 * preference plus Gumbel noise, among candidates drawn by popularity — so clicks are both
 * personal (learnable) and skewed (a popularity baseline is non-trivial).
 */
export function implicitClicks(o: ImplicitOptions): { ratings: Ratings; numUsers: number; numItems: number } {
  const rank = o.rank ?? 8;
  const rng = new Rng(deriveSeed(o.seed, 'implicit'));
  const P = new Float32Array(o.users * rank).map(() => rng.normal());
  const Q = new Float32Array(o.items * rank).map(() => rng.normal());
  const popularity = rng.permutation(o.items);
  const cdf = zipfCdf(o.items, o.itemSkew ?? 0.8);
  const builder = new RatingsBuilder(false, o.users * o.perUser);
  const perUser = Math.min(o.perUser, o.items);
  for (let u = 0; u < o.users; u++) {
    const candidates = new Set<number>();
    let guard = 0;
    while (candidates.size < Math.min(o.items, perUser * 4) && guard++ < perUser * 200) {
      candidates.add(popularity[sampleCdf(cdf, rng.nextFloat())]);
    }
    const scored = [...candidates].map((i) => {
      let dot = 0;
      for (let k = 0; k < rank; k++) dot += P[u * rank + k] * Q[i * rank + k];
      return [i, dot / Math.sqrt(rank) - Math.log(-Math.log(rng.nextFloat() || 1e-12))] as const;
    });
    scored.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    for (let j = 0; j < Math.min(perUser, scored.length); j++) builder.push(u, scored[j][0], 1);
  }
  return { ratings: builder.build(), numUsers: o.users, numItems: o.items };
}

/** Writes ratings as an ml-latest/ml-20m style ratings.csv (streaming; ids written 1-based). */
export async function writeRatingsCsv(r: Ratings, path: string): Promise<void> {
  const out = createWriteStream(path);
  const write = async (s: string): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await write('userId,movieId,rating,timestamp\n');
  let buf = '';
  for (let i = 0; i < r.length; i++) {
    buf += `${r.user[i] + 1},${r.item[i] + 1},${r.rating[i]},${r.timestamp !== undefined ? r.timestamp[i] : 0}\n`;
    if (buf.length > 1 << 16) {
      await write(buf);
      buf = '';
    }
  }
  await write(buf);
  out.end();
  await once(out, 'finish');
}
