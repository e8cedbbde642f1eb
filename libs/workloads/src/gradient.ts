// The workload every gradient model of @actorflow/models shares: parameter shards in the
// aggregator, ps or mirrored trainers, snapshot evaluation, params.bin as the saved model.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadParams, type EmbeddingTable } from '@actorflow/embeddings';
import { topK } from '@actorflow/metrics';
import { createModel, exampleKindOf, listModels, modelEntry, userHyper, type TrainableModel } from '@actorflow/models';
import { gather, type ParamStore } from '@actorflow/strategies';
import { gradientAggregator } from './gradient-aggregator.ts';
import { serveGradientEvaluator } from './gradient-evaluator.ts';
import { runGradientTrainer } from './gradient-trainer.ts';
import { saveGradientModel } from './save.ts';
import type { OpenedModel, Workload } from './workload.ts';

/** A saved model that cannot be opened: says which file is missing or wrong and what to do. */
export class ModelOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelOpenError';
  }
}

const registered = (model: string): boolean => listModels().some((m) => m.name === model);

export const gradientWorkload: Workload = {
  name: 'gradient',
  models: () => listModels().map((m) => ({ name: m.name, description: m.description, hyper: userHyper(m) })),
  handles: registered,
  launchInfo: (model) => modelEntry(model),
  aggregator: gradientAggregator,
  runTrainer: runGradientTrainer,
  serveEvaluator: serveGradientEvaluator,
  hasParameters: () => true,
  plannedSteps: () => undefined,
  exampleKind: (config) => exampleKindOf(createModel(config.model, config.hyper)),
  saveModel: (nc, config, dir, extra) => saveGradientModel(nc, createModel(config.model, config.hyper), config, dir, extra),
  checkModel: (dir, config) => {
    const model = createModel(config.model, config.hyper);
    if ((model.input ?? 'ratings') === 'images') throw new ModelOpenError(`${config.model} is an image model; recommend works on recommender models`);
    const paramsPath = join(dir, 'params.bin');
    if (!existsSync(paramsPath)) throw new ModelOpenError(`${paramsPath} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
  },
  openModel: (dir, config, ds, ratingRange) => {
    gradientWorkload.checkModel(dir, config);
    const model = createModel(config.model, config.hyper);
    const paramsPath = join(dir, 'params.bin');
    const file = loadParams(paramsPath);
    const tables: Record<string, EmbeddingTable> = {};
    for (const t of file.tables) tables[t.name] = t;
    for (const spec of model.tableSpecs()) if (tables[spec.name] === undefined) throw new ModelOpenError(`${paramsPath} has no table '${spec.name}' that ${config.model} needs`);
    const rating = (model.task ?? 'rating') === 'rating';
    return openedGradientModel(model, { tables, dense: { ...file.dense } }, ds.numItems, rating ? (ratingRange ?? ds.ratingRange) : undefined);
  },
};

/** A gradient model with its parameters, as `recommend` uses it (also for models built in memory). */
export function openedGradientModel(
  m: TrainableModel<unknown>,
  params: ParamStore,
  numItems: number,
  ratingRange?: readonly [number, number],
): OpenedModel & { readonly model: TrainableModel<unknown>; readonly params: ParamStore } {
  return {
    name: m.name,
    model: m,
    params,
    clipsScores: true,
    ...(ratingRange !== undefined ? { ratingRange } : {}),
    similarity: `cosine of ${m.name} item embeddings`,
    scoreItems: (engine, _user, hist) => {
      if (m.scoreItems === undefined || m.rowsForScoring === undefined) throw new ModelOpenError(`${m.name} cannot rank items (it has no scoreItems)`);
      return m.scoreItems(engine.tf, hist, gather(params, m.rowsForScoring(hist)));
    },
    // The item table of the model: the first table with one row per item and more than one column, preferring one whose name says item.
    similar: (i, n) => {
      const candidates = Object.values(params.tables).filter((t) => t.rows === numItems && t.dim > 1);
      const table = candidates.find((t) => /item/i.test(t.name)) ?? candidates[0];
      if (table === undefined) throw new ModelOpenError(`${m.name} has no item embedding table to compare items with`);
      const d = table.dim;
      const norms = new Float32Array(table.rows);
      for (let r = 0; r < table.rows; r++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += table.data[r * d + k] ** 2;
        norms[r] = Math.sqrt(s);
      }
      const sims = new Float32Array(table.rows);
      for (let r = 0; r < table.rows; r++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += table.data[r * d + k] * table.data[i * d + k];
        sims[r] = norms[r] > 0 && norms[i] > 0 ? dot / (norms[r] * norms[i]) : 0;
      }
      const top = topK(sims, n, Int32Array.of(i));
      return Array.from(top, (j) => ({ index: j, score: sims[j] }));
    },
  };
}
