// A minimal single-process training loop for models whose batches are not ratings (interaction
// rows, images), plus CSR helpers — for the learning tests of the neural models. Not a test file.
import type { Engine } from '@actorflow/engine';
import { EpochIterator, type InteractionsBatch, type Ratings } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import type { TrainableModel } from '@actorflow/models';
import { applyStep, createOptimizer, gather, initParams, type ParamStore } from '../src/params.ts';

/** All rows of `r` grouped by user (by: 'user') or by item (by: 'item'), ids 0…numRows-1, columns ascending. */
export function groupRows(r: Ratings, by: 'user' | 'item', numRows: number): InteractionsBatch {
  const rowCol = by === 'user' ? r.user : r.item;
  const colCol = by === 'user' ? r.item : r.user;
  const order = Array.from({ length: r.length }, (_, i) => i).sort((a, b) => rowCol[a] - rowCol[b] || colCol[a] - colCol[b]);
  const offsets = new Int32Array(numRows + 1);
  for (let i = 0; i < r.length; i++) offsets[rowCol[i] + 1]++;
  for (let k = 0; k < numRows; k++) offsets[k + 1] += offsets[k];
  return {
    user: Int32Array.from({ length: numRows }, (_, k) => k),
    offsets,
    items: Int32Array.from(order, (i) => colCol[i]),
    values: Float32Array.from(order, (i) => r.rating[i]),
  };
}

/** The rows at positions `idx` of a CSR batch. */
export function takeRows(all: InteractionsBatch, idx: ArrayLike<number>): InteractionsBatch {
  let nnz = 0;
  for (let j = 0; j < idx.length; j++) nnz += all.offsets[idx[j] + 1] - all.offsets[idx[j]];
  const offsets = new Int32Array(idx.length + 1);
  const items = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  const user = new Int32Array(idx.length);
  let at = 0;
  for (let j = 0; j < idx.length; j++) {
    const k = idx[j];
    const s = all.offsets[k];
    const e = all.offsets[k + 1];
    items.set(all.items.subarray(s, e), at);
    values.set(all.values.subarray(s, e), at);
    at += e - s;
    offsets[j + 1] = at;
    user[j] = all.user[k];
  }
  return { user, offsets, items, values };
}

export interface LoopOptions<B> {
  readonly engine: Engine;
  readonly model: TrainableModel<B>;
  /** Number of examples; batches are built from an epoch's shuffled example indices. */
  readonly examples: number;
  readonly take: (idx: Int32Array) => B;
  readonly batchSize: number;
  readonly epochs: number;
  readonly seed: number;
  readonly optimizer: OptimizerConfig;
  readonly onEpoch?: (epoch: number, params: ParamStore, info: { step: number; loss: number; seconds: number }) => void;
}

/** initParams → per step gather, computeGradients(ctx {seed, epoch, step}), applyStep. */
export function trainLoop<B>(o: LoopOptions<B>): { params: ParamStore; steps: number; seconds: number } {
  const params = initParams(o.model as TrainableModel<unknown>, o.seed);
  const optimizer = createOptimizer(o.optimizer);
  const it = new EpochIterator({ rows: o.examples, batchSize: o.batchSize, seed: o.seed });
  const t0 = performance.now();
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    let lossSum = 0;
    let count = 0;
    for (const idx of it.batches(epoch)) {
      const batch = o.take(idx);
      const r = o.model.computeGradients(o.engine.tf, batch, gather(params, o.model.rowsFor(batch)), { seed: o.seed, epoch, step });
      applyStep(params, optimizer, r);
      lossSum += r.loss * r.count;
      count += r.count;
      step++;
    }
    o.onEpoch?.(epoch, params, { step, loss: lossSum / count, seconds: (performance.now() - t0) / 1000 });
  }
  return { params, steps: step, seconds: (performance.now() - t0) / 1000 };
}
