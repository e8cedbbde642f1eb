// What a trainable model is, as the strategies see it. Parameters live outside the model, as
// typed arrays (embedding tables and dense tensors); the model says which table rows a batch needs
// and turns (batch, gathered rows, dense tensors) into a loss and gradients with TF.js. So the
// same model runs under every strategy: local, parameter server, mirrored.
import type { Tf } from '@actorflow/engine';
import { sortedIndexOf, type Initializer, type SparseGradient } from '@actorflow/embeddings';
import type { ExampleKind, InteractionsBatch } from '@actorflow/data';

/**
 * What a model's examples are; the data shards serve batches of that kind:
 *   ratings       RatingsBatch (user, item, rating) — MF, SVD++, NCF, NeuMF
 *   interactions  InteractionsBatch, one row per user (or per item for item-based AutoRec)
 *   images        ImageBatch (pixels, label) — MNIST
 */
export type InputKind = 'ratings' | 'interactions' | 'images';

/** What the model is scored on: rating → RMSE/MAE; ranking → NDCG/Recall/…@K; classification → accuracy; reconstruction → loss. */
export type Task = 'rating' | 'ranking' | 'classification' | 'reconstruction';

/**
 * Randomness of a step (dropout, VAE noise, sampled negatives) must not depend on how a batch was
 * split across ranks: derive it per example from (seed, epoch, example id), e.g.
 * `new Rng(deriveSeed(ctx.seed, 'dropout', ctx.epoch, user))`. Then mirrored N×B equals one
 * process with N·B.
 */
export interface StepContext {
  readonly seed: number;
  readonly epoch: number;
  /** This trainer's step count (the global step in mirrored; per trainer in ps): for schedules such as KL annealing. */
  readonly step: number;
}

/** A ratings batch that also carries the training histories of its users (for SVD++'s implicit factors and NeuMF's negatives). */
export interface RatingsWithHistory {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly rating: Float32Array;
  /** One row per distinct user of the batch, sorted by user. Present when the model sets `needsHistory`. */
  readonly history?: InteractionsBatch;
}

export interface TableSpec {
  readonly name: string;
  readonly rows: number;
  readonly dim: number;
  readonly init: Initializer;
  /**
   * Rows indexed by user or item ids whose untrained rows (ids absent from the training data)
   * should predict with the mean of the trained rows instead of their random initial value.
   */
  readonly coldStart?: { readonly ids: 'users' | 'items' };
}

export interface DenseSpec {
  readonly name: string;
  readonly size: number;
  readonly init: Initializer;
}

/** Rows of each table gathered for one batch (rows sorted, unique), and every dense tensor. */
export interface GatheredParams {
  readonly tables: Readonly<Record<string, { readonly rows: Int32Array; readonly values: Float32Array }>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}

export interface StepResult {
  /** Mean loss over the batch. */
  readonly loss: number;
  /** Examples in the batch; gradients are of the mean loss, reducers weight by count. */
  readonly count: number;
  /** Per table: deduplicated, sorted rows and their gradients. */
  readonly sparse: Readonly<Record<string, SparseGradient>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}

export interface TrainableModel<Batch> {
  readonly name: string;
  /** The kind of batch the model trains on (default 'ratings'). */
  readonly input?: InputKind;
  /** How it is evaluated (default 'rating'). */
  readonly task?: Task;
  /** Interactions models: whether a row is a user's items (default) or an item's users (item-based AutoRec). */
  readonly rowsAre?: 'users' | 'items';
  /** Ratings models only: every batch must carry its users' training histories (`RatingsWithHistory.history`). */
  readonly needsHistory?: boolean;
  tableSpecs(): readonly TableSpec[];
  denseSpecs(): readonly DenseSpec[];
  /**
   * Unique, sorted rows of each table that this batch reads. With the step's context, a model
   * whose step samples rows (NeuMF's negatives) names only the sampled ones; without, all it may read.
   */
  rowsFor(batch: Batch, ctx?: StepContext): Record<string, Int32Array>;
  computeGradients(tf: Tf, batch: Batch, params: GatheredParams, ctx?: StepContext): StepResult;
  /**
   * rating: one predicted rating per example; classification: n × classes probabilities;
   * reconstruction: the reconstructed examples; ranking models with interactions input: n × items scores.
   */
  predict(tf: Tf, batch: Batch, params: GatheredParams): Float32Array;
  /**
   * Ranking (and rating models used for top-N): scores of every item for each user of `history`
   * (n × numItems, row-major; higher is better). Seen items are not masked here: the caller does it.
   */
  scoreItems?(tf: Tf, history: InteractionsBatch, params: GatheredParams): Float32Array;
  /** The rows `scoreItems` reads for these users. */
  rowsForScoring?(history: InteractionsBatch): Record<string, Int32Array>;
  /**
   * Rating models on rows (AutoRec): predictions at the `query` entries with the rows' training
   * vectors `history` as input (same row ids, same order); one value per query entry, CSR order.
   */
  predictPairs?(tf: Tf, history: InteractionsBatch, query: InteractionsBatch, params: GatheredParams): Float32Array;
  rowsForPairs?(history: InteractionsBatch, query: InteractionsBatch): Record<string, Int32Array>;
}

export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

/** A gathered table the model needs; a clear error naming the model when it was not gathered. */
export function needTable(model: string, p: GatheredParams, name: string): { rows: Int32Array; values: Float32Array } {
  const t = p.tables[name];
  if (t === undefined) throw new ModelError(`${model}: table '${name}' was not gathered`);
  return t;
}

/** `[loss, ...gradients]` as read back by `readTidy` → the loss as a number and the gradients. */
export function lossAndGrads(read: readonly Float32Array[]): { loss: number; g: Float32Array[] } {
  const [loss, ...g] = read;
  if (loss === undefined || loss.length !== 1) throw new ModelError('a step must return the loss (a scalar) first');
  return { loss: loss[0], g };
}

/** Unique sorted values of an id column. */
export function uniqueSorted(ids: Int32Array): Int32Array {
  // A native typed-array sort and one pass: 3× faster than building a Set on a batch's ids.
  const sorted = ids.slice().sort();
  let k = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[k - 1]) sorted[k++] = sorted[i];
  return sorted.slice(0, k);
}

/**
 * Expands gathered rows to one row per example: position of each id in `rows` (sorted) → its
 * values. This happens outside TF.js on purpose (see DESIGN.md: gather gradients are dense).
 */
export function perExample(ids: Int32Array, gathered: { rows: Int32Array; values: Float32Array }, dim: number, what: string): Float32Array {
  const out = new Float32Array(ids.length * dim);
  const { rows, values } = gathered;
  for (let i = 0; i < ids.length; i++) {
    const at = sortedIndexOf(rows, ids[i]);
    if (at < 0) throw new ModelError(`${what} row ${ids[i]} was not gathered for this batch`);
    out.set(values.subarray(at * dim, (at + 1) * dim), i * dim);
  }
  return out;
}

/** The kind of examples the data shards must serve this model. */
export function exampleKindOf(model: Pick<TrainableModel<unknown>, 'input' | 'rowsAre'>): ExampleKind {
  const input = model.input ?? 'ratings';
  if (input === 'interactions') return model.rowsAre === 'items' ? 'item-rows' : 'user-rows';
  return input;
}
