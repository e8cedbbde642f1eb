// The dataset of a job, loaded the same way by every data shard (and the evaluator): same spec,
// same seed → the same train/test split everywhere.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  carveValidation,
  countIds,
  DataError,
  filterMinCounts,
  groupRows,
  toImplicit,
  loadBundledDigits,
  loadIdx,
  loadRatings,
  parseSplitSpec,
  randomSplit,
  resolveUserPath,
  splitBySpec,
  syntheticRatings,
  SYNTHETIC_SIZES,
  takeBatch,
  type HeldOut,
  type IdMap,
  type ImageSet,
  type Ratings,
  type RatingsFormat,
  type SyntheticSize,
} from '@actorflow/data';

export interface DatasetSpec {
  /**
   * `synthetic:tiny|small|medium|ml20m`, a ratings file path (any format @actorflow/data reads),
   * `mnist:bundled` (the digits of the `mnist` package) or `mnist:DIR` (IDX files: train-images-idx3-ubyte[.gz], …).
   */
  readonly source: string;
  /** Split spec, e.g. `random:0.1` (default), or `file:PATH` (a test file in the training file's format; ids encoded jointly). */
  readonly split?: string;
  readonly seed: number;
  /** Every rating must lie in [lo, hi]; a rating outside is a file:line error. */
  readonly ratingRange?: readonly [number, number];
  /** Applied before the split (k-core filter, see filterMinCounts); not with `file:` splits. */
  readonly minUserRatings?: number;
  readonly minItemRatings?: number;
  /** Ratings ≥ T become 1, the others are dropped (toImplicit), before the split. */
  readonly implicitThreshold?: number;
  /**
   * A validation set carved from training (for early stopping): a fraction such as `0.05` (seeded)
   * or `file:PATH` (a ratings file in the training file's format, ids shared; its ratings are
   * removed from training). Never trained on; served as the `validation` test-set kind.
   */
  readonly validation?: string;
}

/** The dataset options of --rating-range, --min-user-ratings, --min-item-ratings, --implicit-threshold. */
export type DataOptions = Pick<DatasetSpec, 'ratingRange' | 'minUserRatings' | 'minItemRatings' | 'implicitThreshold' | 'validation'>;

/** The data-shard flags of `data` (the same names as the launcher's). */
export function dataOptionFlags(data: DataOptions): string[] {
  return [
    ...(data.ratingRange !== undefined ? ['--rating-range', data.ratingRange.join(',')] : []),
    ...(data.minUserRatings !== undefined ? ['--min-user-ratings', `${data.minUserRatings}`] : []),
    ...(data.minItemRatings !== undefined ? ['--min-item-ratings', `${data.minItemRatings}`] : []),
    ...(data.implicitThreshold !== undefined ? ['--implicit-threshold', `${data.implicitThreshold}`] : []),
    ...(data.validation !== undefined ? ['--validation', data.validation] : []),
  ];
}

/** Parses the data options from flag values (apps/job and apps/data-shard check them alike). */
export function parseDataOptions(
  v: { 'rating-range'?: string; 'min-user-ratings'?: string; 'min-item-ratings'?: string; 'implicit-threshold'?: string; validation?: string },
  env: Readonly<Record<string, string | undefined>> = process.env,
): DataOptions {
  const fail = (msg: string): DataError => new DataError(msg);
  const out: { ratingRange?: readonly [number, number]; minUserRatings?: number; minItemRatings?: number; implicitThreshold?: number; validation?: string } = {};
  const val = v.validation;
  if (val !== undefined) {
    if (val.startsWith('file:')) {
      const given = val.slice('file:'.length);
      if (given === '') throw fail(`--validation file: needs a path (a ratings file in the training file's format)`);
      const path = resolveUserPath(given, env);
      if (!existsSync(path)) throw fail(`--validation ${val}: no such file ${path}`);
      out.validation = `file:${path}`;
    } else {
      const f = Number(val);
      if (val.trim() === '' || !(f > 0 && f < 1)) throw fail(`--validation takes a fraction of the training ratings between 0 and 1 (e.g. 0.05) or file:PATH, got '${val}'`);
      out.validation = `${f}`;
    }
  }
  const rr = v['rating-range'];
  if (rr !== undefined) {
    const parts = rr.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
    if (parts.length !== 2 || !parts.every(Number.isFinite) || parts[0] > parts[1]) throw fail(`--rating-range takes LO,HI (two numbers, LO ≤ HI, e.g. 1,5), got '${rr}'`);
    out.ratingRange = [parts[0], parts[1]];
  }
  for (const [flag, key] of [
    ['min-user-ratings', 'minUserRatings'],
    ['min-item-ratings', 'minItemRatings'],
  ] as const) {
    const raw = v[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < 1) throw fail(`--${flag} must be a positive integer, got '${raw}'`);
    out[key] = n;
  }
  const it = v['implicit-threshold'];
  if (it !== undefined) {
    const n = Number(it);
    if (it.trim() === '' || !Number.isFinite(n)) throw fail(`--implicit-threshold must be a number (ratings ≥ it become 1), got '${it}'`);
    out.implicitThreshold = n;
  }
  return out;
}

export interface JobDataset {
  readonly train: Ratings;
  readonly test: Ratings;
  readonly numUsers: number;
  readonly numItems: number;
  readonly globalMean: number;
  /** The lowest and highest training rating: rating models' predictions are clipped to it. */
  readonly ratingRange?: readonly [number, number];
  /** RMSE of the true model on the synthetic data (absent for real data). */
  readonly noiseFloorRmse?: number;
  /** --validation: ratings carved from training (never trained on), evaluated each epoch for early stopping. */
  readonly validation?: Ratings;
  /** `strong:F` splits: the held-out users' fold-in ratings (their histories at evaluation; never trained on). */
  readonly foldIn?: Ratings;
  /** Raw ids of users and items (files: the ids in the file; synthetic data: absent, ids are the indices). */
  readonly users?: IdMap;
  readonly items?: IdMap;
  /** Image datasets (MNIST): the images; the ratings fields are then empty. */
  readonly images?: { readonly train: ImageSet; readonly test: ImageSet; readonly numClasses: number };
}

const emptyRatings: Ratings = { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0), length: 0 };

function loadImages(spec: DatasetSpec): { train: ImageSet; test: ImageSet; numClasses: number } {
  const where = spec.source.slice('mnist:'.length);
  if (where === 'bundled') return { ...loadBundledDigits({ seed: spec.seed }), numClasses: 10 };
  // The published file names, gzipped or not.
  const pick = (stem: string): string => (existsSync(join(where, stem)) ? join(where, stem) : join(where, `${stem}.gz`));
  return { train: loadIdx(pick('train-images-idx3-ubyte'), pick('train-labels-idx1-ubyte')), test: loadIdx(pick('t10k-images-idx3-ubyte'), pick('t10k-labels-idx1-ubyte')), numClasses: 10 };
}

export async function loadJobDataset(spec: DatasetSpec, log: (line: string) => void = () => undefined): Promise<JobDataset> {
  let ratings: Ratings;
  let numUsers: number;
  let numItems: number;
  let noiseFloorRmse: number | undefined;
  let ids: { users: IdMap; items: IdMap } | undefined;
  if (spec.source.startsWith('mnist:')) {
    const images = loadImages(spec);
    log(`${spec.source}: ${images.train.n} training and ${images.test.n} test images`);
    return { train: emptyRatings, test: emptyRatings, numUsers: 0, numItems: 0, globalMean: 0, images };
  }
  if (spec.source.startsWith('synthetic:')) {
    const size = spec.source.slice('synthetic:'.length);
    if (!(size in SYNTHETIC_SIZES)) throw new DataError(`unknown dataset '${spec.source}'; use synthetic:${Object.keys(SYNTHETIC_SIZES).join('|synthetic:')} or a file path`);
    const s = syntheticRatings(size as SyntheticSize, spec.seed);
    ratings = s.ratings;
    numUsers = s.numUsers;
    numItems = s.numItems;
    noiseFloorRmse = s.truth.floorRmse;
  } else {
    const source = resolveUserPath(spec.source);
    const progress = (what: string): ((p: { bytes: number; totalBytes: number; rows: number }) => void) => {
      let last = 0;
      return (p) => {
        if (p.bytes - last > 64e6 || p.bytes === p.totalBytes) {
          last = p.bytes;
          log(`loading ${what}: ${(p.bytes / 1e6).toFixed(0)}/${(p.totalBytes / 1e6).toFixed(0)} MB, ${p.rows} ratings`);
        }
      };
    };
    const range = spec.ratingRange !== undefined ? { ratingRange: spec.ratingRange } : {};
    const loaded = await loadRatings(source, { onProgress: progress(source), ...range });
    ratings = loaded.ratings;
    ids = { users: loaded.users, items: loaded.items };
    const fileSplit = spec.split !== undefined ? parseSplitSpec(spec.split) : undefined;
    if (fileSplit?.kind === 'file') {
      // One id map for both files: the test file extends the training file's maps, so a test id
      // unseen in training gets its own (never trained) row, which evaluation treats as cold start.
      const testPath = resolveUserPath(fileSplit.path);
      if (spec.minUserRatings !== undefined || spec.minItemRatings !== undefined)
        throw new DataError(`min-count filters do not apply to a file: split (they would drop ids the test file uses); filter the files beforehand`);
      const test = await loadRatings(testPath, { onProgress: progress(testPath), users: loaded.users, items: loaded.items, format: loaded.format, ...range });
      const implicit = (r: Ratings): Ratings => (spec.implicitThreshold !== undefined ? toImplicit(r, { threshold: spec.implicitThreshold }) : r);
      const trainPart = await withValidation(implicit(ratings), spec, { users: loaded.users, items: loaded.items, format: loaded.format, ...range }, log);
      return finish(trainPart.train, implicit(test.ratings), loaded.users.size, loaded.items.size, undefined, ids, undefined, trainPart.validation);
    }
    numUsers = loaded.users.size;
    numItems = loaded.items.size;
  }
  if (spec.implicitThreshold !== undefined) {
    const before = ratings.length;
    ratings = toImplicit(ratings, { threshold: spec.implicitThreshold });
    log(`implicit feedback: ${ratings.length} of ${before} ratings are ≥ ${spec.implicitThreshold}`);
    if (ratings.length === 0) throw new DataError(`no rating is ≥ the implicit threshold ${spec.implicitThreshold}`);
  }
  if (spec.minUserRatings !== undefined || spec.minItemRatings !== undefined) {
    const before = ratings.length;
    const f = filterMinCounts(
      ratings,
      { ...(spec.minUserRatings !== undefined ? { minUserRatings: spec.minUserRatings } : {}), ...(spec.minItemRatings !== undefined ? { minItemRatings: spec.minItemRatings } : {}) },
      ids ?? {},
    );
    ratings = f.ratings;
    if (ratings.length === 0) throw new DataError(`no rating is left after the min-count filters (users ≥ ${spec.minUserRatings ?? 0}, items ≥ ${spec.minItemRatings ?? 0} ratings)`);
    ids = f.users !== undefined && f.items !== undefined ? { users: f.users, items: f.items } : undefined;
    numUsers = f.users?.size ?? countIds(ratings.user);
    numItems = f.items?.size ?? countIds(ratings.item);
    log(`min-count filters: ${ratings.length} of ${before} ratings kept, ${numUsers} users, ${numItems} items`);
  }
  const split = spec.split === undefined ? randomSplit(ratings, { seed: spec.seed }) : splitBySpec(ratings, spec.split, spec.seed);
  const { test } = split;
  const fileIds =
    ids !== undefined && !spec.source.startsWith('synthetic:') ? { users: ids.users, items: ids.items, ...(spec.ratingRange !== undefined ? { ratingRange: spec.ratingRange } : {}) } : undefined;
  const { train, validation } = await withValidation(split.train, spec, fileIds, log);
  // A validation file's ids unseen so far got rows of their own (cold start, like a file: test split).
  if (fileIds !== undefined) {
    numUsers = Math.max(numUsers, fileIds.users.size);
    numItems = Math.max(numItems, fileIds.items.size);
  }
  // Strong generalisation (Mult-VAE protocol): held-out users' fold-in items are never trained on,
  // but they are those users' histories when the model is scored on their target items.
  const foldIn = 'foldIn' in split ? (split as { foldIn: Ratings }).foldIn : undefined;
  return finish(train, test, numUsers, numItems, noiseFloorRmse, ids, foldIn, validation);
}

/** Carves spec.validation out of the training ratings (a fraction, or the ratings of a file with the same ids). */
async function withValidation(
  train: Ratings,
  spec: DatasetSpec,
  file: { users: IdMap; items: IdMap; format?: RatingsFormat; ratingRange?: readonly [number, number] } | undefined,
  log: (line: string) => void,
): Promise<{ train: Ratings; validation?: Ratings }> {
  const v = spec.validation;
  if (v === undefined) return { train };
  if (!v.startsWith('file:')) {
    const s = carveValidation(train, { fraction: Number(v), seed: spec.seed });
    log(`validation: ${s.test.length} of ${train.length} training ratings held out`);
    return { train: s.train, validation: s.test };
  }
  const path = resolveUserPath(v.slice('file:'.length));
  if (file === undefined) throw new DataError(`--validation ${v}: a validation file needs --dataset to be a ratings file (its ids are the training file's), not ${spec.source}`);
  const loaded = await loadRatings(path, {
    users: file.users,
    items: file.items,
    ...(file.format !== undefined ? { format: file.format } : {}),
    ...(file.ratingRange !== undefined ? { ratingRange: file.ratingRange } : {}),
  });
  // The validation file's (user, item) pairs are removed from training, so none is trained on.
  const held = new Set<number>();
  const key = (u: number, i: number): number => u * 0x100000 + i;
  for (let k = 0; k < loaded.ratings.length; k++) held.add(key(loaded.ratings.user[k], loaded.ratings.item[k]));
  const keep: number[] = [];
  for (let k = 0; k < train.length; k++) if (!held.has(key(train.user[k], train.item[k]))) keep.push(k);
  const idx = Int32Array.from(keep);
  const b = takeBatch(train, idx);
  log(`validation: ${loaded.ratings.length} ratings from ${path}; ${train.length - idx.length} of them removed from training`);
  return { train: { ...b, length: idx.length }, validation: loaded.ratings };
}

function finish(
  train: Ratings,
  test: Ratings,
  numUsers: number,
  numItems: number,
  noiseFloorRmse: number | undefined,
  ids: { users: IdMap; items: IdMap } | undefined,
  foldIn: Ratings | undefined,
  validation?: Ratings,
): JobDataset {
  let sum = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < train.length; i++) {
    const r = train.rating[i];
    sum += r;
    if (r < lo) lo = r;
    if (r > hi) hi = r;
  }
  return {
    train,
    test,
    numUsers,
    numItems,
    globalMean: train.length > 0 ? sum / train.length : 0,
    ...(train.length > 0 ? { ratingRange: [lo, hi] as const } : {}),
    ...(noiseFloorRmse !== undefined ? { noiseFloorRmse } : {}),
    ...ids,
    ...(foldIn !== undefined ? { foldIn } : {}),
    ...(validation !== undefined ? { validation } : {}),
  };
}
/** What decides a model's held-out data: its task and input (a TrainableModel has these). */
export interface ModelShape {
  readonly task?: string;
  readonly input?: string;
  readonly rowsAre?: string;
}

/** The held-out data `model` is scored on, from a dataset in memory (DataClient.heldOut sends the same over NATS). */
export function heldOutOf(model: ModelShape, ds: JobDataset): HeldOut {
  if ((model.input ?? 'ratings') === 'images') {
    if (ds.images === undefined) throw new DataError('an image model needs an image dataset (mnist:bundled or mnist:DIR)');
    return { images: { pixels: ds.images.test.pixels, label: ds.images.test.labels }, numItems: 0 };
  }
  const history = groupRows(historyRatings(ds), 'user');
  if (model.task === 'ranking') return { testRows: groupRows(ds.test, 'user'), history, numItems: ds.numItems };
  return {
    ratings: ds.test,
    history,
    ...(ds.ratingRange !== undefined ? { ratingRange: ds.ratingRange } : {}),
    ...(model.rowsAre === 'items' ? { itemHistory: groupRows(ds.train, 'item') } : {}),
    numItems: ds.numItems,
  };
}

/** The data-decided hyper-parameters of a dataset (see withDataHyper in @actorflow/models). */
export function dataFacts(ds: JobDataset): { numUsers: number; numItems: number; globalMean: number; numClasses: number } {
  return { numUsers: ds.numUsers, numItems: ds.numItems, globalMean: ds.globalMean, numClasses: ds.images?.numClasses ?? 10 };
}

/** Every user's known ratings: the training set, and with a strong split the held-out users' fold-in ratings. */
export function historyRatings(ds: JobDataset): Ratings {
  const f = ds.foldIn;
  if (f === undefined) return ds.train;
  const cat = <T extends Int32Array | Float32Array>(x: T, y: T, C: { new (n: number): T }): T => {
    const out = new C(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  return { user: cat(ds.train.user, f.user, Int32Array), item: cat(ds.train.item, f.item, Int32Array), rating: cat(ds.train.rating, f.rating, Float32Array), length: ds.train.length + f.length };
}
