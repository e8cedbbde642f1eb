// The dataset of a job, loaded the same way by every data shard (and the evaluator): same spec,
// same seed → the same train/test split everywhere.
import { DataError, loadRatings, randomSplit, splitBySpec, syntheticRatings, SYNTHETIC_SIZES, type Ratings, type SyntheticSize } from '@actorflow/data';

export interface DatasetSpec {
  /** `synthetic:tiny|small|medium|ml20m`, or a ratings file path (any format @actorflow/data reads). */
  readonly source: string;
  /** Split spec, e.g. `random:0.1` (default). */
  readonly split?: string;
  readonly seed: number;
}

export interface JobDataset {
  readonly train: Ratings;
  readonly test: Ratings;
  readonly numUsers: number;
  readonly numItems: number;
  readonly globalMean: number;
  /** RMSE of the true model on the synthetic data (absent for real data). */
  readonly noiseFloorRmse?: number;
}

export async function loadJobDataset(spec: DatasetSpec, log: (line: string) => void = () => undefined): Promise<JobDataset> {
  let ratings: Ratings;
  let numUsers: number;
  let numItems: number;
  let noiseFloorRmse: number | undefined;
  if (spec.source.startsWith('synthetic:')) {
    const size = spec.source.slice('synthetic:'.length);
    if (!(size in SYNTHETIC_SIZES)) throw new DataError(`unknown dataset '${spec.source}'; use synthetic:${Object.keys(SYNTHETIC_SIZES).join('|synthetic:')} or a file path`);
    const s = syntheticRatings(size as SyntheticSize, spec.seed);
    ratings = s.ratings;
    numUsers = s.numUsers;
    numItems = s.numItems;
    noiseFloorRmse = s.truth.floorRmse;
  } else {
    let last = 0;
    const loaded = await loadRatings(spec.source, {
      onProgress: (p) => {
        if (p.bytes - last > 64e6 || p.bytes === p.totalBytes) {
          last = p.bytes;
          log(`loading ${spec.source}: ${(p.bytes / 1e6).toFixed(0)}/${(p.totalBytes / 1e6).toFixed(0)} MB, ${p.rows} ratings`);
        }
      },
    });
    ratings = loaded.ratings;
    numUsers = loaded.users.size;
    numItems = loaded.items.size;
  }
  const { train, test } = spec.split === undefined ? randomSplit(ratings, { seed: spec.seed }) : splitBySpec(ratings, spec.split, spec.seed);
  let sum = 0;
  for (let i = 0; i < train.length; i++) sum += train.rating[i];
  return { train, test, numUsers, numItems, globalMean: train.length > 0 ? sum / train.length : 0, ...(noiseFloorRmse !== undefined ? { noiseFloorRmse } : {}) };
}
