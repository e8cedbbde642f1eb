// Scoring a model on held-out data, by task: rating → RMSE/MAE; ranking → full-ranking
// Precision/Recall/NDCG/MAP/HR@K and MRR with the user's training items excluded; classification →
// accuracy and cross-entropy; reconstruction → binary cross-entropy. The same function serves the
// local reference, the evaluator actor and the tests, so a number means the same everywhere.
import type { Engine } from '@actorflow/engine';
import { groupRows, rowsForIds, takeRows, type HeldOut, type ImageBatch, type InteractionsBatch, type Ratings, type RatingsBatch } from '@actorflow/data';
import { RankingAccumulator, RegressionAccumulator } from '@actorflow/metrics';
import { ModelError, uniqueSorted, type TrainableModel } from '@actorflow/models';
import { gather, type ParamStore } from './params.ts';

/** Held-out data of a job (see HeldOut) and the cut-offs for ranking metrics (default 10, 20, 50). */
export interface EvalData extends HeldOut {
  readonly ks?: readonly number[];
}

/** Told how far a long evaluation is: `done` of `total` users, rows or examples. */
export type EvalProgress = (done: number, total: number) => void;

export type Metrics = Record<string, number>;

const DEFAULT_EVAL_KS = [10, 20, 50];

/** A ratings batch with its users' training histories attached (for models that set `needsHistory`). */
export function withHistory(batch: RatingsBatch, history: InteractionsBatch | undefined): RatingsBatch {
  if (history === undefined) throw new ModelError("this model needs the users' training histories, but none were given (ask the data shards with history: true)");
  return { ...batch, history: rowsForIds(history, uniqueSorted(batch.user)) };
}

/**
 * Predictions clipped to the dataset's rating range (a copy; `pred` itself when there is no range):
 * a rating model may predict 5.49 on a 1–5 scale, and a clipped prediction is never further from the truth.
 */
export function clipToRange(pred: Float32Array, range: readonly [number, number] | undefined): Float32Array {
  if (range === undefined) return pred;
  const [lo, hi] = range;
  const out = new Float32Array(pred.length);
  for (let k = 0; k < pred.length; k++) out[k] = pred[k] < lo ? lo : pred[k] > hi ? hi : pred[k];
  return out;
}

function slice(r: Ratings, start: number, end: number): RatingsBatch {
  return { user: r.user.subarray(start, end), item: r.item.subarray(start, end), rating: r.rating.subarray(start, end) };
}

function evaluateRatings(engine: Engine, model: TrainableModel<unknown>, params: ParamStore, data: EvalData, batchSize: number, onProgress?: EvalProgress): Metrics {
  const test = data.ratings;
  if (test === undefined) throw new ModelError(`${model.name}: a rating task needs test ratings`);
  const acc = new RegressionAccumulator();
  const m = model as TrainableModel<RatingsBatch>;
  for (let start = 0; start < test.length; start += batchSize) {
    let batch = slice(test, start, Math.min(test.length, start + batchSize));
    if (model.needsHistory === true) batch = withHistory(batch, data.history);
    acc.add(clipToRange(m.predict(engine.tf, batch, gather(params, m.rowsFor(batch))), data.ratingRange), batch.rating);
    onProgress?.(Math.min(test.length, start + batchSize), test.length);
  }
  const { rmse, mae } = acc.result();
  return { rmse, mae };
}

/**
 * Rating task on row examples (AutoRec): the model reads each row's training vector (an item's
 * ratings by user, for item-based) and predicts the test entries of the same row: the test pair
 * (u, i) is row i, column u.
 */
function evaluateRowRatings(engine: Engine, model: TrainableModel<unknown>, params: ParamStore, data: EvalData, batchSize: number, onProgress?: EvalProgress): Metrics {
  const test = data.ratings;
  const byItem = model.rowsAre === 'items';
  const rows = byItem ? data.itemHistory : data.history;
  if (test === undefined || rows === undefined) throw new ModelError(`${model.name}: a rating task on ${byItem ? 'item' : 'user'} rows needs test ratings and the training rows`);
  if (model.predictPairs === undefined || model.rowsForPairs === undefined) throw new ModelError(`${model.name}: a rating task on rows needs predictPairs`);
  const acc = new RegressionAccumulator();
  const testRows = groupRows(test, byItem ? 'item' : 'user');
  for (let s = 0; s < testRows.user.length; s += batchSize) {
    const query = takeRows(
      testRows,
      Int32Array.from({ length: Math.min(batchSize, testRows.user.length - s) }, (_, k) => s + k),
    );
    const hist = rowsForIds(rows, query.user);
    acc.add(clipToRange(model.predictPairs(engine.tf, hist, query, gather(params, model.rowsForPairs(hist, query))), data.ratingRange), query.values);
    onProgress?.(s + query.user.length, testRows.user.length);
  }
  const { rmse, mae } = acc.result();
  return { rmse, mae };
}

/** Full ranking with training items excluded; users come in chunks so score matrices stay small. */
export function evaluateRanking(engine: Engine, model: TrainableModel<unknown>, params: ParamStore, data: EvalData, batchSize = 256, onProgress?: EvalProgress): Metrics {
  const { testRows, history } = data;
  if (testRows === undefined || history === undefined) throw new ModelError(`${model.name}: ranking needs the test items and training items per user`);
  if (model.scoreItems === undefined || model.rowsForScoring === undefined) throw new ModelError(`${model.name} cannot score items for ranking (no scoreItems)`);
  const acc = new RankingAccumulator({ numItems: data.numItems, ks: data.ks ?? DEFAULT_EVAL_KS });
  const users = testRows.user;
  const chunk = Math.max(1, Math.min(batchSize, Math.floor(4e6 / Math.max(1, data.numItems))));
  for (let s = 0; s < users.length; s += chunk) {
    const ids = users.subarray(s, Math.min(users.length, s + chunk));
    const hist = rowsForIds(history, ids);
    const scores = model.scoreItems(engine.tf, hist, gather(params, model.rowsForScoring(hist)));
    scoreChunk(
      acc,
      (k) => scores.subarray(k * data.numItems, (k + 1) * data.numItems),
      hist,
      takeRows(
        testRows,
        Int32Array.from({ length: ids.length }, (_, k) => s + k),
      ),
    );
    onProgress?.(s + ids.length, users.length);
  }
  return acc.result().metrics;
}

/** Row k of `hist` and `test` is one user: scores over all items, training items excluded, test items relevant. */
function scoreChunk(acc: RankingAccumulator, scores: (k: number) => Float32Array, hist: InteractionsBatch, test: InteractionsBatch): void {
  for (let k = 0; k < hist.user.length; k++) {
    acc.add(scores(k), hist.items.subarray(hist.offsets[k], hist.offsets[k + 1]), test.items.subarray(test.offsets[k], test.offsets[k + 1]));
  }
}

/** The popularity baseline: every user gets the items with the most training interactions. */
export function popularityRanking(data: EvalData): Metrics {
  const { testRows, history } = data;
  if (testRows === undefined || history === undefined) throw new ModelError('the popularity baseline needs the test items and training items per user');
  const counts = new Float32Array(data.numItems);
  for (const i of history.items) counts[i]++;
  const acc = new RankingAccumulator({ numItems: data.numItems, ks: data.ks ?? DEFAULT_EVAL_KS });
  scoreChunk(acc, () => counts, rowsForIds(history, testRows.user), testRows);
  return acc.result().metrics;
}

function evaluateImages(engine: Engine, model: TrainableModel<unknown>, params: ParamStore, data: EvalData, batchSize: number, onProgress?: EvalProgress): Metrics {
  const images = data.images;
  if (images === undefined) throw new ModelError(`${model.name}: needs test images`);
  const n = images.label.length;
  const px = images.pixels.length / Math.max(1, n);
  const m = model as TrainableModel<ImageBatch>;
  let correct = 0;
  let loss = 0;
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    const batch: ImageBatch = { pixels: images.pixels.subarray(s * px, e * px), label: images.label.subarray(s, e) };
    const out = m.predict(engine.tf, batch, gather(params, m.rowsFor(batch)));
    if (model.task === 'classification') {
      const classes = out.length / (e - s);
      for (let k = 0; k < e - s; k++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (out[k * classes + c] > out[k * classes + best]) best = c;
        if (best === batch.label[k]) correct++;
        loss -= Math.log(Math.max(out[k * classes + batch.label[k]], 1e-12));
      }
    } else {
      // Reconstruction: binary cross-entropy per pixel.
      for (let j = 0; j < out.length; j++) {
        const y = batch.pixels[j];
        const p = Math.min(Math.max(out[j], 1e-7), 1 - 1e-7);
        loss -= (y * Math.log(p) + (1 - y) * Math.log(1 - p)) / px;
      }
    }
    onProgress?.(e, n);
  }
  return model.task === 'classification' ? { accuracy: correct / n, loss: loss / n } : { bce: loss / n };
}

/**
 * Parameters for prediction: rows of tables that declare `coldStart` and whose user or item never
 * occurs in the training data are replaced by the mean of the trained rows (a copy; `params` is
 * not changed). Without a training history it returns `params` as they are.
 */
export function withColdStart(model: TrainableModel<unknown>, params: ParamStore, history: InteractionsBatch | undefined): ParamStore {
  const specs = model.tableSpecs().filter((s) => s.coldStart !== undefined);
  if (specs.length === 0 || history === undefined) return params;
  const tables = { ...params.tables };
  for (const spec of specs) {
    const t = params.tables[spec.name];
    const trained = new Uint8Array(t.rows);
    if (spec.coldStart?.ids === 'users') for (const u of history.user) trained[u] = 1;
    else for (const i of history.items) trained[i] = 1;
    const mean = new Float64Array(t.dim);
    let n = 0;
    for (let r = 0; r < t.rows; r++) {
      if (trained[r] === 0) continue;
      n++;
      for (let k = 0; k < t.dim; k++) mean[k] += t.data[r * t.dim + k];
    }
    if (n === 0 || n === t.rows) continue;
    const data = t.data.slice();
    for (let r = 0; r < t.rows; r++) if (trained[r] === 0) for (let k = 0; k < t.dim; k++) data[r * t.dim + k] = mean[k] / n;
    tables[spec.name] = { ...t, data };
  }
  return { tables, dense: params.dense };
}

/** Scores `params` of `model` on held-out data, by the model's task. */
export function evaluateModel(engine: Engine, model: TrainableModel<unknown>, trained: ParamStore, data: EvalData, o: { batchSize?: number; onProgress?: EvalProgress } = {}): Metrics {
  const params = withColdStart(model, trained, data.history);
  const task = model.task ?? 'rating';
  const input = model.input ?? 'ratings';
  const batchSize = o.batchSize ?? 4096;
  if (input === 'images') return evaluateImages(engine, model, params, data, Math.min(batchSize, 512), o.onProgress);
  if (task === 'ranking') return evaluateRanking(engine, model, params, data, 256, o.onProgress);
  if (input === 'interactions') return evaluateRowRatings(engine, model, params, data, 256, o.onProgress);
  return evaluateRatings(engine, model, params, data, batchSize, o.onProgress);
}

/** The metric a task is judged on, and whether lower is better (for logs and summaries). */
export function headlineMetric(model: TrainableModel<unknown>): { name: string; lowerIsBetter: boolean } {
  const task = model.task ?? 'rating';
  if (task === 'ranking') return { name: 'ndcg@10', lowerIsBetter: false };
  if (task === 'classification') return { name: 'accuracy', lowerIsBetter: false };
  if (task === 'reconstruction') return { name: 'bce', lowerIsBetter: true };
  return { name: 'rmse', lowerIsBetter: true };
}
