// The single-process reference: plain minibatch training in one process. The distributed
// strategies must equal it (mirrored N×B = local with N·B; ps with one trainer = local).
import type { Engine } from '@actorflow/engine';
import { EpochIterator, exampleCount, takeExamples, type ExampleSet, type InteractionsBatch, type Ratings, type RatingsBatch } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import type { TrainableModel } from '@actorflow/models';
import { evaluateModel, withHistory, type EvalData, type Metrics } from './evaluate.ts';
import { applyStep, createOptimizer, gather, initParams, type ParamStore } from './params.ts';

export interface StepReport {
  readonly step: number;
  readonly epoch: number;
  readonly loss: number;
  readonly examples: number;
}

export interface LocalOptions {
  readonly engine: Engine;
  readonly model: TrainableModel<unknown>;
  /** Training examples of the model's input kind (plain Ratings are rating rows). */
  readonly train: ExampleSet | Ratings;
  /** Every user's training items, for models that set `needsHistory` (SVD++, NeuMF). */
  readonly history?: InteractionsBatch;
  /** Held-out data scored after every epoch (plain Ratings: test ratings). */
  readonly test?: EvalData | Ratings;
  readonly batchSize: number;
  readonly epochs: number;
  readonly seed: number;
  readonly optimizer: OptimizerConfig;
  readonly onStep?: (r: StepReport) => void;
  readonly onEpoch?: (epoch: number, metrics: Metrics | undefined) => void;
}

export interface LocalResult {
  readonly params: ParamStore;
  readonly steps: number;
  readonly metrics?: Metrics;
}

function asSet(t: ExampleSet | Ratings): ExampleSet {
  return 'kind' in t ? t : { kind: 'ratings', ratings: t };
}

function asEval(t: EvalData | Ratings): EvalData {
  return 'numItems' in t ? t : { ratings: t, numItems: 0 };
}

/** Scores rating predictions on test ratings (kept for rating models; see evaluateModel for every task). */
export function evaluate(engine: Engine, model: TrainableModel<unknown>, params: ParamStore, data: Ratings | EvalData): Metrics {
  return evaluateModel(engine, model, params, asEval(data));
}

export function trainLocal(o: LocalOptions): LocalResult {
  const params = initParams(o.model, o.seed);
  const optimizer = createOptimizer(o.optimizer);
  const train = asSet(o.train);
  const epochs = new EpochIterator({ rows: exampleCount(train), batchSize: o.batchSize, seed: o.seed });
  let step = 0;
  let metrics: Metrics | undefined;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (const idx of epochs.batches(epoch)) {
      let batch = takeExamples(train, idx);
      if (o.model.needsHistory === true) batch = withHistory(batch as RatingsBatch, o.history);
      const ctx = { seed: o.seed, epoch, step };
      const result = o.model.computeGradients(o.engine.tf, batch, gather(params, o.model.rowsFor(batch, ctx)), ctx);
      applyStep(params, optimizer, result);
      step++;
      o.onStep?.({ step, epoch, loss: result.loss, examples: result.count });
    }
    metrics = o.test !== undefined ? evaluateModel(o.engine, o.model, params, asEval(o.test)) : undefined;
    o.onEpoch?.(epoch, metrics);
  }
  return { params, steps: step, ...(metrics !== undefined ? { metrics } : {}) };
}
