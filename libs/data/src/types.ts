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
  /** When asked for (SVD++, NeuMF): the training histories of the batch's distinct users, sorted by user. */
  readonly history?: InteractionsBatch;
}

/**
 * Per-user interaction rows in CSR form (the autoencoders' examples, and training histories):
 * row k is user[k]'s items items[offsets[k] … offsets[k+1]) with values[…] (ratings, or 1 for
 * implicit feedback). Same shape as the wire's Arrow interactions batch.
 */
export interface InteractionsBatch {
  readonly user: Int32Array;
  /** user.length + 1 offsets into items/values. */
  readonly offsets: Int32Array;
  readonly items: Int32Array;
  readonly values: Float32Array;
}

/** Images with labels (MNIST): n × pixels floats in [0, 1], row-major. Same shape as the wire's Arrow image batch. */
export interface ImageBatch {
  readonly pixels: Float32Array;
  readonly label: Int32Array;
}

/**
 * Held-out data in the forms the tasks are scored on (each optional: a task uses what it needs).
 * Data shards send it (feed), the evaluation reads it (strategies).
 */
export interface HeldOut {
  /** Test ratings (rating task). */
  readonly ratings?: Ratings;
  /** Test items per user (ranking). */
  readonly testRows?: InteractionsBatch;
  /** Training items per user: the input of autoencoders, the items excluded when ranking, the ids with trained rows. */
  readonly history?: InteractionsBatch;
  /** Training ratings per item (item-based AutoRec's input rows). */
  readonly itemHistory?: InteractionsBatch;
  readonly images?: ImageBatch;
  readonly numItems: number;
  /** Rating task: the lowest and highest training rating; predictions are clipped to it when scored. */
  readonly ratingRange?: readonly [number, number];
}
