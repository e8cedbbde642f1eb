// Train/test splits. All are seeded and deterministic, and all are index partitions of the input,
// so no rating can be on both sides.
import { countIds, groupByUser, selectRows } from './columns.ts';
import { DataError } from './errors.ts';
import { Rng, deriveSeed } from './random.ts';
import type { Ratings } from './types.ts';

export interface Split {
  readonly train: Ratings;
  readonly test: Ratings;
}

/** Strong generalisation: held-out users' ratings split into what the model sees (fold-in) and what it must predict (target). */
export interface StrongSplit extends Split {
  /** Held-out users' fold-in ratings (the test = target ratings). */
  readonly foldIn: Ratings;
  readonly heldOutUsers: Int32Array;
}

function partition(r: Ratings, isTest: Uint8Array): Split {
  let nt = 0;
  for (let i = 0; i < r.length; i++) nt += isTest[i];
  const train = new Int32Array(r.length - nt);
  const test = new Int32Array(nt);
  let a = 0;
  let b = 0;
  for (let i = 0; i < r.length; i++) {
    if (isTest[i] === 1) test[b++] = i;
    else train[a++] = i;
  }
  return { train: selectRows(r, train), test: selectRows(r, test) };
}

function checkFraction(name: string, f: number): void {
  if (!(f > 0 && f < 1)) throw new DataError(`${name} must be between 0 and 1 (exclusive), got ${f}`);
}

/** A random fraction of all ratings (default 0.1) goes to test. */
export function randomSplit(r: Ratings, opts: { fraction?: number; seed: number }): Split {
  const fraction = opts.fraction ?? 0.1;
  checkFraction('test fraction', fraction);
  return fixedSizeSplit(r, { testSize: Math.round(r.length * fraction), seed: opts.seed });
}

/**
 * Fold `fold` of a seeded K-fold cross-validation (Surprise's KFold): the ratings are shuffled
 * once with the seed and cut into K near-equal parts; fold i tests on part i and trains on the
 * rest. Over i = 0…K−1 every rating is tested exactly once, and never trained on in its own fold.
 */
export function kFoldSplit(r: Ratings, opts: { k: number; fold: number; seed: number }): Split {
  const { k, fold } = opts;
  if (!Number.isInteger(k) || k < 2) throw new DataError(`k-fold: K must be an integer ≥ 2, got ${k}`);
  if (!Number.isInteger(fold) || fold < 0 || fold >= k) throw new DataError(`k-fold: the fold must be 0…${k - 1}, got ${fold}`);
  if (r.length < k) throw new DataError(`k-fold: ${r.length} rating(s) cannot be cut into ${k} folds`);
  const perm = new Rng(deriveSeed(opts.seed, 'kfold')).permutation(r.length);
  const isTest = new Uint8Array(r.length);
  // Part i is positions ⌊i·n/K⌋ … ⌊(i+1)·n/K⌋ of the permutation.
  const lo = Math.floor((fold * r.length) / k);
  const hi = Math.floor(((fold + 1) * r.length) / k);
  for (let j = lo; j < hi; j++) isTest[perm[j]] = 1;
  return partition(r, isTest);
}

/**
 * A validation set carved from training: a seeded random `fraction` of `train` (seeded apart from
 * the test split) goes to `test`, the rest stays training. Used for early stopping.
 */
export function carveValidation(train: Ratings, opts: { fraction: number; seed: number }): Split {
  checkFraction('validation fraction', opts.fraction);
  const n = Math.round(train.length * opts.fraction);
  if (n < 1 || n >= train.length)
    throw new DataError(`a validation fraction of ${opts.fraction} of ${train.length} training ratings leaves ${n} validation rating(s); use a larger fraction or dataset`);
  return fixedSizeSplit(train, { testSize: n, seed: deriveSeed(opts.seed, 'validation') });
}

/** Exactly testSize random ratings go to test. */
export function fixedSizeSplit(r: Ratings, opts: { testSize: number; seed: number }): Split {
  if (!Number.isInteger(opts.testSize) || opts.testSize < 0 || opts.testSize > r.length) {
    throw new DataError(`test size must be an integer in 0…${r.length}, got ${opts.testSize}`);
  }
  const perm = new Rng(deriveSeed(opts.seed, 'split')).permutation(r.length);
  const isTest = new Uint8Array(r.length);
  for (let k = 0; k < opts.testSize; k++) isTest[perm[k]] = 1;
  return partition(r, isTest);
}

/**
 * Per user, `n` random ratings go to test (the classic 10 per user). A user keeps at least
 * `minTrain` (default 1) ratings in train, so users with few ratings give fewer to test.
 */
export function perUserHoldout(r: Ratings, opts: { n?: number; minTrain?: number; seed: number }): Split {
  const n = opts.n ?? 10;
  const minTrain = opts.minTrain ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new DataError(`per-user holdout n must be a positive integer, got ${n}`);
  return perUser(r, opts.seed, (count) => Math.max(0, Math.min(n, count - minTrain)));
}

/** Per user, a fraction of their ratings (rounded, at least one rating kept in train) goes to test. */
export function perUserFractionSplit(r: Ratings, opts: { fraction: number; seed: number }): Split {
  checkFraction('per-user test fraction', opts.fraction);
  return perUser(r, opts.seed, (count) => Math.min(count - 1, Math.round(count * opts.fraction)));
}

function perUser(r: Ratings, seed: number, testCount: (count: number) => number): Split {
  const numUsers = countIds(r.user);
  const { start, order } = groupByUser(r, numUsers);
  const isTest = new Uint8Array(r.length);
  for (let u = 0; u < numUsers; u++) {
    const rows = order.slice(start[u], start[u + 1]);
    if (rows.length === 0) continue;
    new Rng(deriveSeed(seed, 'user-split', u)).shuffle(rows);
    const k = testCount(rows.length);
    for (let j = 0; j < k; j++) isTest[rows[j]] = 1;
  }
  return partition(r, isTest);
}

/**
 * Leave-one-out: each user's latest rating (by timestamp; ties go to the later row in the file)
 * goes to test. Users with a single rating keep it in train.
 */
export function leaveOneOut(r: Ratings): Split {
  const ts = r.timestamp;
  if (ts === undefined) throw new DataError('leave-one-out needs timestamps, and these ratings have none (use a per-user holdout instead)');
  const numUsers = countIds(r.user);
  const { start, order } = groupByUser(r, numUsers);
  const isTest = new Uint8Array(r.length);
  for (let u = 0; u < numUsers; u++) {
    if (start[u + 1] - start[u] < 2) continue;
    let best = order[start[u]];
    for (let j = start[u] + 1; j < start[u + 1]; j++) {
      const i = order[j];
      if (ts[i] > ts[best] || (ts[i] === ts[best] && i > best)) best = i;
    }
    isTest[best] = 1;
  }
  return partition(r, isTest);
}

/**
 * Strong generalisation (Mult-VAE protocol): whole users are held out (`heldOut` users, or a
 * fraction of them); train = the other users; each held-out user's ratings are split into
 * fold-in (`foldInFraction`, default 0.8) and target (the test side).
 */
export function strongGeneralization(r: Ratings, opts: { heldOut: number; foldInFraction?: number; seed: number }): StrongSplit {
  const numUsers = countIds(r.user);
  const k = opts.heldOut < 1 ? Math.round(numUsers * opts.heldOut) : opts.heldOut;
  if (!Number.isInteger(k) || k < 1 || k >= numUsers) throw new DataError(`held-out users must be 1…${numUsers - 1} (or a fraction), got ${opts.heldOut}`);
  const foldIn = opts.foldInFraction ?? 0.8;
  checkFraction('fold-in fraction', foldIn);
  const users = new Rng(deriveSeed(opts.seed, 'strong-users')).permutation(numUsers).slice(0, k).sort();
  const held = new Uint8Array(numUsers);
  for (const u of users) held[u] = 1;
  const { start, order } = groupByUser(r, numUsers);
  const side = new Uint8Array(r.length); // 0 train, 1 fold-in, 2 target
  for (const u of users) {
    const rows = order.slice(start[u], start[u + 1]);
    new Rng(deriveSeed(opts.seed, 'strong-fold', u)).shuffle(rows);
    const nFold = Math.max(rows.length > 1 ? 1 : 0, Math.min(rows.length - 1, Math.round(rows.length * foldIn)));
    for (let j = 0; j < rows.length; j++) side[rows[j]] = j < nFold ? 1 : 2;
  }
  const pick = (s: number): Int32Array => {
    const out: number[] = [];
    for (let i = 0; i < r.length; i++) if (side[i] === s) out.push(i);
    return Int32Array.from(out);
  };
  return { train: selectRows(r, pick(0)), foldIn: selectRows(r, pick(1)), test: selectRows(r, pick(2)), heldOutUsers: users };
}

/** A parsed split spec (see parseSplitSpec). */
export type SplitSpec =
  | { readonly kind: 'random'; readonly fraction: number }
  | { readonly kind: 'fixed'; readonly testSize: number }
  | { readonly kind: 'user'; readonly n: number }
  | { readonly kind: 'user-fraction'; readonly fraction: number }
  | { readonly kind: 'loo' }
  | { readonly kind: 'strong'; readonly heldOut: number }
  /** Fold `fold` (0-based; `kfold:K/I`, plain `kfold:K` is fold 0) of a seeded K-fold cross-validation. */
  | { readonly kind: 'kfold'; readonly k: number; readonly fold: number }
  /** A test file in the training file's format; the path is as given (resolve it with resolveUserPath). */
  | { readonly kind: 'file'; readonly path: string };

const SPEC_HELP = 'use random:F, fixed:N, user:N, user-fraction:F, loo, strong:F, kfold:K[/I] or file:PATH';

/**
 * Parses and checks a split spec without any data, so a launcher can reject a bad one before it
 * starts anything: `random:0.1`, `fixed:5000`, `user:10`, `user-fraction:0.2`, `loo`, `strong:0.1`,
 * `kfold:K` or `kfold:K/I` (fold I of K, 0-based), `file:PATH` (everything after the first ':' is the path).
 */
export function parseSplitSpec(spec: string): SplitSpec {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? undefined : spec.slice(colon + 1);
  const num = (fallback?: number): number => {
    if (arg === undefined || arg === '') {
      if (fallback !== undefined) return fallback;
      throw new DataError(`split '${spec}' needs a value after ':'`);
    }
    const v = Number(arg);
    if (!Number.isFinite(v)) throw new DataError(`split '${spec}': '${arg}' is not a number`);
    return v;
  };
  const fraction = (name: string, fallback: number): number => {
    const f = num(fallback);
    if (!(f > 0 && f < 1)) throw new DataError(`split '${spec}': ${name} must be between 0 and 1 (exclusive), got ${f}`);
    return f;
  };
  const int = (name: string, fallback: number | undefined, min: number): number => {
    const n = num(fallback);
    if (!Number.isInteger(n) || n < min) throw new DataError(`split '${spec}': ${name} must be an integer ≥ ${min}, got ${n}`);
    return n;
  };
  switch (kind) {
    case 'random':
      return { kind, fraction: fraction('the test fraction', 0.1) };
    case 'fixed':
      return { kind, testSize: int('the test size', undefined, 1) };
    case 'user':
      return { kind, n: int('the ratings per user', 10, 1) };
    case 'user-fraction':
      return { kind, fraction: fraction('the per-user test fraction', 0.2) };
    case 'loo':
      if (arg !== undefined) throw new DataError(`split '${spec}': loo takes no value`);
      return { kind };
    case 'strong': {
      const h = num(0.1);
      if (!(h > 0 && (h < 1 || Number.isInteger(h)))) throw new DataError(`split '${spec}': held-out users must be a fraction in (0, 1) or a whole number of users, got ${h}`);
      return { kind, heldOut: h };
    }
    case 'kfold': {
      const m = /^(\d+)(?:\/(\d+))?$/.exec(arg ?? '');
      if (m === null) throw new DataError(`split '${spec}': k-fold is kfold:K or kfold:K/I (fold I of K, counted from 0), e.g. kfold:5 or kfold:5/2`);
      const k = Number(m[1]);
      const fold = m[2] !== undefined ? Number(m[2]) : 0;
      if (k < 2) throw new DataError(`split '${spec}': K must be at least 2, got ${k}`);
      if (fold >= k) throw new DataError(`split '${spec}': the fold must be 0…${k - 1} (counted from 0), got ${fold}`);
      return { kind, k, fold };
    }
    case 'file':
      if (arg === undefined || arg === '') throw new DataError(`split '${spec}' needs a path after 'file:' (a test file in the training file's format)`);
      return { kind, path: arg };
    default:
      throw new DataError(`unknown split '${spec}'; ${SPEC_HELP}`);
  }
}

/**
 * A split from a short spec, as used on command lines: `random:0.1`, `fixed:5000`, `user:10`,
 * `user-fraction:0.2`, `loo`, `strong:0.1` (fold-in/target together in `test` is not what
 * callers of strong want: use strongGeneralization directly for the fold-in). `file:PATH` needs
 * the test file loaded with the training file's id maps: @actorflow/feed's loadJobDataset does that.
 */
export function splitBySpec(r: Ratings, spec: string, seed: number): Split {
  const s = parseSplitSpec(spec);
  if (s.kind === 'file') throw new DataError(`split '${spec}' reads a second file; load it with the training file's id maps (loadJobDataset in @actorflow/feed does)`);
  if (r.length < 2) throw new DataError(`the dataset has ${r.length} rating(s): too few to split into train and test (split '${spec}')`);
  let split: Split;
  switch (s.kind) {
    case 'random':
      split = randomSplit(r, { fraction: s.fraction, seed });
      break;
    case 'fixed':
      split = fixedSizeSplit(r, { testSize: s.testSize, seed });
      break;
    case 'user':
      split = perUserHoldout(r, { n: s.n, seed });
      break;
    case 'user-fraction':
      split = perUserFractionSplit(r, { fraction: s.fraction, seed });
      break;
    case 'loo':
      split = leaveOneOut(r);
      break;
    case 'strong':
      split = strongGeneralization(r, { heldOut: s.heldOut, seed });
      break;
    case 'kfold':
      split = kFoldSplit(r, { k: s.k, fold: s.fold, seed });
      break;
  }
  if (split.train.length === 0 || split.test.length === 0) {
    throw new DataError(
      `the dataset (${r.length} ratings) is too small for split '${spec}': it leaves ${split.train.length} training and ${split.test.length} test ratings; use a larger dataset or another split`,
    );
  }
  return split;
}
