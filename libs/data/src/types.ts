// Core in-memory dataset types shared by every part of @actorflow/data.

/**
 * Ratings (or implicit interactions) held column-wise in typed arrays: row i is
 * (user[i], item[i], rating[i], timestamp?[i]). Columnar so that 20M rows fit in ~240 MB and
 * slices go to Arrow and the wire without copying through JS arrays.
 */
export interface Ratings {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly rating: Float32Array;
  /** Seconds since the Unix epoch, when the source has it (MovieLens, Netflix dates). */
  readonly timestamp?: Float64Array;
  readonly length: number;
}

/** One training batch of ratings (same columns as the wire's Arrow ratings batch). */
export interface RatingsBatch {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly rating: Float32Array;
}
