// Epoch iteration: an epoch-seeded permutation of the rows, cut into batches. In distributed mode
// (like torch's DistributedSampler) every rank computes the same permutation and takes its own
// slice of each global batch, so the ranks' batches of step t together are exactly the
// single-process batch t of size worldSize × batchSize.
import { DataError } from './errors.ts';
import { Rng, deriveSeed } from './random.ts';
import type { RatingsBatch } from './types.ts';
import type { Ratings } from './types.ts';

export interface EpochOptions {
  readonly rows: number;
  /** Per-rank batch size. */
  readonly batchSize: number;
  readonly seed: number;
  readonly rank?: number;
  readonly worldSize?: number;
  /** Drop the last global batch when it is not full (default false). */
  readonly dropRemainder?: boolean;
  readonly shuffle?: boolean;
}

export class EpochIterator {
  readonly #o: Required<EpochOptions>;

  constructor(o: EpochOptions) {
    const worldSize = o.worldSize ?? 1;
    const rank = o.rank ?? 0;
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new DataError(`batch size must be a positive integer, got ${o.batchSize}`);
    if (!Number.isInteger(worldSize) || worldSize < 1) throw new DataError(`world size must be a positive integer, got ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new DataError(`rank must be 0…${worldSize - 1}, got ${rank}`);
    this.#o = { rank, worldSize, dropRemainder: false, shuffle: true, ...o };
  }

  /** The epoch's permutation of row indices (identical for every rank). */
  order(epoch: number): Int32Array {
    if (!this.#o.shuffle) return Int32Array.from({ length: this.#o.rows }, (_, i) => i);
    return new Rng(deriveSeed(this.#o.seed, 'epoch', epoch)).permutation(this.#o.rows);
  }

  /** Global batches (all ranks) of an epoch. */
  globalBatchCount(): number {
    const g = this.#o.batchSize * this.#o.worldSize;
    return this.#o.dropRemainder ? Math.floor(this.#o.rows / g) : Math.ceil(this.#o.rows / g);
  }

  /**
   * This rank's batches of an epoch. Rank r's batch t is order[t·W·B + r·B … t·W·B + (r+1)·B),
   * clipped to the data; in the last, partial global batch the lower ranks fill up first, so
   * higher ranks may get a short or no batch (uneven data, by design).
   */
  *batches(epoch: number): Generator<Int32Array> {
    const { batchSize: B, worldSize: W, rank } = this.#o;
    const order = this.order(epoch);
    const count = this.globalBatchCount();
    for (let t = 0; t < count; t++) {
      const start = Math.min(order.length, t * W * B + rank * B);
      const end = Math.min(order.length, start + B, (t + 1) * W * B);
      if (end <= start) return;
      yield order.subarray(start, end);
    }
  }
}

/** The rows at `indices` as a training batch. */
export function takeBatch(r: Ratings, indices: Int32Array): RatingsBatch {
  const n = indices.length;
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  const rating = new Float32Array(n);
  // Columns in locals: the loop stays free of property loads whatever shape `r` has.
  const U = r.user;
  const I = r.item;
  const R = r.rating;
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    user[k] = U[i];
    item[k] = I[i];
    rating[k] = R[i];
  }
  return { user, item, rating };
}
