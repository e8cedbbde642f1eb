// kNN's registration: neighbourhood models have no parameters and no gradients, so every role
// does its own thing — the trainer ranks split the similarity blocks, the aggregator collects and
// merges them, the evaluator scores the merged lists, the saved model is neighbours.bin. The role
// logic is libs/knn's; this maps it onto the Workload seam.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { actorLog, type NatsConnection } from '@actorflow/bus';
import { DataClient, serveJobConfig } from '@actorflow/feed';
import {
  KNN_DEFAULTS,
  KNN_LAUNCH,
  KNN_MODEL,
  KnnModel,
  knnAggregatorFlags,
  knnSettings,
  plannedBlocks,
  prepareKnn,
  readNeighbours,
  runKnnTrainer,
  saveKnnModel,
  serveKnnAggregator,
  serveKnnEvaluator,
  type KnnHyper,
} from '@actorflow/knn';
import { ModelOpenError } from './gradient.ts';
import { appendEvalHistory } from './save.ts';
import type { FlagValues, Workload } from './workload.ts';

const str = (v: FlagValues, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

export const knnWorkload: Workload = {
  name: KNN_MODEL,
  models: () => [{ name: KNN_MODEL, description: KNN_LAUNCH.description, hyper: KNN_DEFAULTS }],
  handles: (model) => model === KNN_MODEL,
  launchInfo: () => KNN_LAUNCH,
  aggregator: (_model, v) => {
    const keys = ['job', 'strategy', 'ps-shard', 'ps-shards', 'world-size', 'seed'] as const;
    const flags = knnAggregatorFlags({
      ...Object.fromEntries(keys.flatMap((k) => (str(v, k) !== undefined ? [[k, str(v, k)]] : []))),
      ...(Array.isArray(v.hyper) ? { hyper: v.hyper as readonly string[] } : {}),
    });
    const log = actorLog('aggregator knn');
    return {
      job: flags.job,
      name: 'aggregator-knn',
      rank: 'knn',
      log,
      serve: async (nc: NatsConnection) => {
        const knn = await serveKnnAggregator(nc, flags, { data: new DataClient(nc, { job: flags.job, shards: 1 }), serveConfig: (c) => serveJobConfig(nc, c), log });
        return { config: knn.config, configOwner: true, stats: () => ({}), stop: () => knn.stop() };
      },
    };
  },
  runTrainer: async (o) => {
    await runKnnTrainer(o.nc, { config: o.config, data: new DataClient(o.nc, { job: o.job, shards: 1 }), ranks: o.ranks, worldSize: o.worldSize, strategy: o.strategy, log: o.log });
    return { steps: plannedBlocks(o.config.hyper) };
  },
  serveEvaluator: (o) => {
    const knn = serveKnnEvaluator(o.nc, {
      config: o.config,
      data: new DataClient(o.nc, { job: o.job, shards: 1 }),
      log: o.log,
      onReport: (r) => (o.out !== undefined ? appendEvalHistory(o.out, r) : undefined),
    });
    return Promise.resolve({ stop: () => knn.stop() });
  },
  hasParameters: () => false,
  // Steps are similarity blocks: summed over the ranks in ps, the busiest rank's in mirrored.
  plannedSteps: (config, strategy, trainers) => (strategy === 'ps' ? plannedBlocks(config.hyper) : Math.ceil(plannedBlocks(config.hyper) / trainers)),
  exampleKind: () => undefined,
  // The merged neighbour lists (model/neighbours.bin) instead of parameters.
  saveModel: (nc, config, dir, extra) => saveKnnModel(nc, config.job, dir, { ...config, dataset: extra.dataset }),
  checkModel: (dir) => {
    const path = join(dir, 'neighbours.bin');
    if (!existsSync(path)) throw new ModelOpenError(`${path} not found: the kNN job did not finish; re-run it`);
  },
  openModel: (dir, config, ds) => {
    knnWorkload.checkModel(dir, config);
    const path = join(dir, 'neighbours.bin');
    const settings = knnSettings(config.hyper as KnnHyper);
    const neighbours = readNeighbours(path);
    const model = new KnnModel(prepareKnn(ds.train, { numUsers: ds.numUsers, numItems: ds.numItems }), settings.options, neighbours);
    const itemBased = settings.options.kind === 'item';
    return {
      name: KNN_MODEL,
      clipsScores: false,
      similarity: 'kNN neighbour similarity',
      // Item-based: the sum of similarities to the user's items (Deshpande & Karypis); user-based: predicted ratings.
      scoreItems: (_engine, user, hist) => model.scoreItems({ items: hist.items, values: hist.values }, itemBased ? { mode: 'sum' } : { user, mode: 'rating' }),
      similar: (i, n) => {
        if (!itemBased) throw new ModelOpenError('a user-based kNN model has no item neighbours; train with --hyper kind=item');
        const out: { index: number; score: number }[] = [];
        for (let e = neighbours.offsets[i]; e < neighbours.offsets[i + 1] && out.length < n; e++) out.push({ index: neighbours.neighbors[e], score: neighbours.sims[e] });
        return out;
      },
    };
  },
};
