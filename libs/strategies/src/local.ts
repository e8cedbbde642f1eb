// The single-process reference: plain minibatch training in one process. The distributed
// strategies must equal it (mirrored N×B = local with N·B; ps with one trainer = local).
import type { Engine } from '@actorflow/engine';
import { EpochIterator, takeBatch, type Ratings, type RatingsBatch } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import { RegressionAccumulator } from '@actorflow/metrics';
import type { TrainableModel } from '@actorflow/models';
import { applyStep, createOptimizer, gather, initParams, type ParamStore } from './params.ts';

export interface StepReport {
  readonly step: number;
  readonly epoch: number;
  readonly loss: number;
  readonly examples: number;
}

export interface LocalOptions {
  readonly engine: Engine;
  readonly model: TrainableModel<RatingsBatch>;
  readonly train: Ratings;
  readonly test?: Ratings;
  readonly batchSize: number;
  readonly epochs: number;
  readonly seed: number;
  readonly optimizer: OptimizerConfig;
  readonly onStep?: (r: StepReport) => void;
  readonly onEpoch?: (epoch: number, metrics: { rmse: number; mae: number } | undefined) => void;
}

export interface LocalResult {
  readonly params: ParamStore;
  readonly steps: number;
  readonly metrics?: { rmse: number; mae: number };
}

export function evaluate(engine: Engine, model: TrainableModel<RatingsBatch>, params: ParamStore, data: Ratings, batchSize = 8192): { rmse: number; mae: number } {
  const acc = new RegressionAccumulator();
  for (let start = 0; start < data.length; start += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, data.length - start) }, (_, k) => start + k);
    const batch = takeBatch(data, idx);
    acc.add(model.predict(engine.tf, batch, gather(params, model.rowsFor(batch))), batch.rating);
  }
  const { rmse, mae } = acc.result();
  return { rmse, mae };
}

export function trainLocal(o: LocalOptions): LocalResult {
  const params = initParams(o.model, o.seed);
  const optimizer = createOptimizer(o.optimizer);
  const epochs = new EpochIterator({ rows: o.train.length, batchSize: o.batchSize, seed: o.seed });
  let step = 0;
  let metrics: { rmse: number; mae: number } | undefined;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (const idx of epochs.batches(epoch)) {
      const batch = takeBatch(o.train, idx);
      const result = o.model.computeGradients(o.engine.tf, batch, gather(params, o.model.rowsFor(batch)));
      applyStep(params, optimizer, result);
      step++;
      o.onStep?.({ step, epoch, loss: result.loss, examples: result.count });
    }
    metrics = o.test !== undefined ? evaluate(o.engine, o.model, params, o.test) : undefined;
    o.onEpoch?.(epoch, metrics);
  }
  return { params, steps: step, ...(metrics !== undefined ? { metrics } : {}) };
}
