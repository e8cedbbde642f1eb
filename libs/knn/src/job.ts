// kNN as a job: what the aggregator, trainers, evaluator and launcher do when the model is 'knn'.
// kNN is not a TrainableModel (no parameters, no gradients), so its workload (registered in
// libs/workloads, which the apps look the model up in) maps each role onto one of these functions; they speak the same configuration (<job>.ctl.config), monitoring
// (train.loss, train.eval) and data-shard subjects as every other model.
//
// Whichever strategy is named, the work is the same: the trainer ranks split the similarity
// blocks (block b goes to rank b mod worldSize), the aggregator collects and merges them, the
// evaluator scores the merged neighbour lists. `ps` and `mirrored` only differ in the name the
// reports carry.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlagError, RemoteError, hyperFlags, intFlag, publishLarge, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import type { InteractionsBatch, Ratings } from '@actorflow/data';
import { evalNowRequestCodec, evalReportCodec, lossReportCodec, monitoringHeaders, subjects, type EvalReport } from '@actorflow/protocol';
import { collectKnnBlocks, fetchNeighbours, knnPlan, runKnnWorker, type KnnCollector } from './distributed.ts';
import { KnnError } from './errors.ts';
import { KNN_NOT_READY, neighboursCodec } from './messages.ts';
import { KnnModel, type KnnOptions, type Normalize } from './model.ts';
import { prepareKnn, resolveSimilarityOptions, type KnnData, type KnnKind, type Neighbours, type SimilarityKind } from './similarity.ts';

/** kNN's model name (it is not in @actorflow/models' registry: libs/workloads registers it). */
export const KNN_MODEL = 'knn';

export type KnnHyper = Readonly<Record<string, number | string | boolean>>;

/** Hyper-parameters and defaults (`--hyper key=value`); the value's type is the default's. */
export const KNN_DEFAULTS = {
  /** 'item' (item-based) or 'user' (user-based). */
  kind: 'item',
  /** 'pearson', 'cosine' or 'adjusted-cosine'. */
  similarity: 'pearson',
  /** Neighbours per prediction. */
  k: 40,
  /** Neighbours kept per row (the largest k a prediction or the k sweep can use). */
  kMax: 200,
  shrinkage: 100,
  minSupport: 1,
  /** 'none', 'mean' or 'zscore'. */
  normalize: 'mean',
  keepNegative: false,
  /** Similarity blocks (split over the trainer ranks). */
  blocks: 8,
  /** Clip predictions to 'min,max' (e.g. '0.5,5' for MovieLens); '' = no clipping. */
  clip: '',
} as const satisfies KnnHyper;

/** The k values the evaluator reports besides the configured k (those <= kMax). */
export const KNN_SWEEP = [10, 20, 40, 80] as const;

/** What the launcher needs to know of kNN before any actor runs (it is not a registered model). */
export const KNN_LAUNCH: { readonly input: 'ratings'; readonly description: string; readonly recommended: { readonly epochs?: number; readonly batchSize?: number } } = {
  input: 'ratings',
  description: 'neighbourhood kNN, user- or item-based (similarity blocks split over the trainers)',
  // The data shards' epochs do not matter: kNN reads the training set once, whole.
  recommended: { epochs: 1 },
};

/** `--hyper KEY=VALUE` pairs typed by KNN_DEFAULTS; an unknown key or a badly typed value is a KnnError. */
export function parseKnnHyper(pairs: readonly string[]): Record<string, number | string | boolean> {
  return hyperFlags(pairs, KNN_DEFAULTS, { owner: 'kNN', error: (m) => new KnnError(m) });
}

export interface KnnSettings {
  readonly options: KnnOptions & { readonly kMax: number; readonly k: number };
  readonly blocks: number;
  readonly numUsers: number;
  readonly numItems: number;
}

/** Typed, validated settings from a job's hyper-parameters (defaults for missing keys). */
export function knnSettings(hyper: KnnHyper): KnnSettings {
  const h: KnnHyper = { ...KNN_DEFAULTS, ...hyper };
  const num = (key: string): number => {
    const v = h[key];
    if (typeof v !== 'number') throw new KnnError(`kNN hyper-parameter ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const str = (key: string): string => String(h[key]);
  let clip: readonly [number, number] | undefined;
  if (str('clip') !== '') {
    const parts = str('clip').split(',').map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite)) throw new KnnError(`kNN hyper-parameter clip must be 'min,max' (e.g. 0.5,5) or empty, got '${str('clip')}'`);
    clip = [parts[0], parts[1]];
  }
  const options: KnnSettings['options'] = {
    kind: str('kind') as KnnKind,
    similarity: str('similarity') as SimilarityKind,
    shrinkage: num('shrinkage'),
    minSupport: num('minSupport'),
    kMax: num('kMax'),
    keepNegative: h.keepNegative === true,
    normalize: str('normalize') as Normalize,
    k: num('k'),
    ...(clip !== undefined ? { clip } : {}),
  };
  const o = resolveSimilarityOptions(options);
  if (!['none', 'mean', 'zscore'].includes(str('normalize'))) throw new KnnError(`kNN hyper-parameter normalize must be none, mean or zscore, got '${str('normalize')}'`);
  const k = num('k');
  if (!Number.isInteger(k) || k < 1 || k > o.kMax) throw new KnnError(`kNN hyper-parameter k must be an integer in 1…kMax (${o.kMax}), got ${k}`);
  if (clip !== undefined && !(clip[0] <= clip[1])) throw new KnnError(`kNN hyper-parameter clip must be 'min,max' with min <= max, got '${str('clip')}'`);
  const blocks = num('blocks');
  if (!Number.isInteger(blocks) || blocks < 1) throw new KnnError(`kNN hyper-parameter blocks must be an integer >= 1, got ${blocks}`);
  const numUsers = typeof h.numUsers === 'number' ? h.numUsers : 0;
  const numItems = typeof h.numItems === 'number' ? h.numItems : 0;
  return { options, blocks, numUsers, numItems };
}

/** Blocks the plan will have (planBlocks never makes empty blocks, so at most one per row). */
export function plannedBlocks(hyper: KnnHyper): number {
  const s = knnSettings(hyper);
  return Math.min(s.blocks, s.options.kind === 'item' ? s.numItems : s.numUsers);
}

/** The job configuration of a kNN job: the shape of @actorflow/feed's JobConfig (served on <job>.ctl.config). */
export interface KnnJobConfig {
  readonly job: string;
  readonly strategy: 'ps' | 'mirrored';
  readonly worldSize: number;
  readonly model: string;
  readonly hyper: KnnHyper;
  /** kNN has no optimizer; a placeholder so every actor reads one JobConfig shape. */
  readonly optimizer: { readonly name: 'sgd'; readonly lr: number };
  readonly psShards: number;
  readonly staleness: string;
  readonly seed: number;
}

/** The part of a job configuration the trainer and evaluator read. */
export type KnnConfigView = Pick<KnnJobConfig, 'job' | 'model' | 'hyper' | 'worldSize'>;

/** What kNN reads from the data shards (DataClient of @actorflow/feed has this shape). */
export interface KnnDataSource {
  waitForInfo(timeoutMs: number, onWait?: (attempt: number) => void): Promise<{ readonly kind?: string; readonly numUsers: number; readonly numItems: number; readonly globalMean: number }>;
  trainHistory(): Promise<InteractionsBatch>;
  testSet(): Promise<Ratings>;
}

/** Users' rows (CSR: user ids, offsets, items, values) as columnar ratings. */
export function ratingsFromRows(rows: InteractionsBatch): Ratings {
  const n = rows.items.length;
  if (rows.offsets.length !== rows.user.length + 1 || rows.offsets[rows.user.length] !== n) {
    throw new KnnError(`user rows are malformed: ${rows.user.length} users, ${rows.offsets.length} offsets ending at ${rows.offsets[rows.offsets.length - 1]}, ${n} items`);
  }
  const user = new Int32Array(n);
  for (let r = 0; r < rows.user.length; r++) user.fill(rows.user[r], rows.offsets[r], rows.offsets[r + 1]);
  return { user, item: rows.items, rating: rows.values, length: n };
}

/** The training set as KnnData, from the data shards (the same on every process of the job). */
export async function loadKnnData(data: KnnDataSource, hyper: KnnHyper): Promise<KnnData> {
  const s = knnSettings(hyper);
  return prepareKnn(ratingsFromRows(await data.trainHistory()), { ...(s.numUsers > 0 ? { numUsers: s.numUsers } : {}), ...(s.numItems > 0 ? { numItems: s.numItems } : {}) });
}

// ---------------------------------------------------------------------------------------------
// Aggregator.

export interface KnnAggregatorFlags {
  readonly job: string;
  readonly strategy: 'ps' | 'mirrored';
  readonly worldSize: number;
  readonly seed: number;
  readonly hyper: Record<string, number | string | boolean>;
}

/** The aggregator's flags for a kNN job, checked before connecting; bad ones are FlagErrors (usage, exit 2). */
export function knnAggregatorFlags(v: {
  readonly job?: string;
  readonly strategy?: string;
  readonly 'ps-shard'?: string;
  readonly 'ps-shards'?: string;
  readonly 'world-size'?: string;
  readonly seed?: string;
  readonly hyper?: readonly string[];
}): KnnAggregatorFlags {
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  if (intFlag('ps-shard', v['ps-shard'], 0) !== 0 || intFlag('ps-shards', v['ps-shards'], 1, 1) !== 1) {
    throw new FlagError('kNN has no parameter shards: start exactly one aggregator (no --ps-shard/--ps-shards), it collects every similarity block');
  }
  try {
    const hyper = parseKnnHyper(v.hyper ?? []);
    knnSettings(hyper);
    return { job: v.job ?? 'local', strategy, worldSize: intFlag('world-size', v['world-size'], 1, 1), seed: intFlag('seed', v.seed, 42), hyper };
  } catch (err) {
    throw err instanceof KnnError ? new FlagError(err.message) : err;
  }
}

export interface KnnAggregator {
  readonly config: KnnJobConfig;
  readonly collector: KnnCollector;
  stop(): void;
}

/**
 * Waits for the data, computes the block plan, starts the collector and then serves the job
 * configuration (in that order, so a trainer that has the configuration finds the collector).
 * `serveConfig` is feed's serveJobConfig (kept out of this library's dependencies).
 */
export async function serveKnnAggregator(
  nc: NatsConnection,
  flags: KnnAggregatorFlags,
  o: { readonly data: KnnDataSource; readonly serveConfig: (config: KnnJobConfig) => Subscription; readonly log?: (line: string) => void },
): Promise<KnnAggregator> {
  const log = o.log ?? (() => undefined);
  const { job } = flags;
  log(`job ${job}: waiting for a data shard (start one with \`npx nx serve data-shard -- --job ${job}\`) …`);
  const info = await o.data.waitForInfo(600_000, (n) => {
    if (n % 20 === 0) log(`still waiting for a data shard of job ${job} …`);
  });
  if (info.kind === 'images') throw new KnnError(`job ${job}: kNN needs ratings, but the data shards serve images; start them with a ratings dataset`);
  const hyper: KnnHyper = { ...KNN_DEFAULTS, ...flags.hyper, numUsers: info.numUsers, numItems: info.numItems, globalMean: info.globalMean };
  const s = knnSettings(hyper);
  const t0 = performance.now();
  const data = await loadKnnData(o.data, hyper);
  const plan = knnPlan(data, s.options.kind, s.blocks);
  log(
    `job ${job}: ${s.options.kind}-based kNN (${s.options.similarity}, k ${s.options.k}, kMax ${s.options.kMax}) over ${data.numUsers} users × ${data.numItems} items; ${plan.length} cost-balanced blocks planned in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const collector = collectKnnBlocks(nc, job, plan, { kMax: s.options.kMax, log });
  const config: KnnJobConfig = {
    job,
    strategy: flags.strategy,
    worldSize: flags.worldSize,
    model: KNN_MODEL,
    hyper,
    optimizer: { name: 'sgd', lr: 0 },
    psShards: 1,
    staleness: 'none',
    seed: flags.seed,
  };
  const configSub = o.serveConfig(config);
  log(`job ${job}: config owner and similarity-block collector ready; waiting for ${flags.worldSize} trainer rank(s)`);
  return {
    config,
    collector,
    stop: () => {
      configSub.unsubscribe();
      collector.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Trainer.

export interface KnnTrainerOptions {
  readonly config: KnnConfigView;
  readonly data: KnnDataSource;
  readonly ranks: readonly number[];
  readonly worldSize: number;
  /** The strategy name the loss reports carry (both strategies split the blocks the same way). */
  readonly strategy: string;
  readonly log?: (line: string) => void;
}

/**
 * Computes this process's ranks' similarity blocks and sends them to the aggregator. Progress
 * goes to train.loss like any trainer's: step = blocks this rank has done, examples = rows in
 * the block, loss 0 (kNN minimises nothing), and a final report with done: true.
 */
export async function runKnnTrainer(nc: NatsConnection, o: KnnTrainerOptions): Promise<void> {
  const log = o.log ?? (() => undefined);
  const { job } = o.config;
  for (const r of o.ranks) {
    if (!Number.isInteger(r) || r < 0 || r >= o.worldSize)
      throw new KnnError(`rank ${r} is not below the world size ${o.worldSize}: start the aggregator with --world-size N (the launcher passes --trainers) or give the trainers --world-size`);
  }
  const s = knnSettings(o.config.hyper);
  const t0 = performance.now();
  const data = await loadKnnData(o.data, o.config.hyper);
  log(`job ${job}: kNN training data (${data.byUser.cols.length} ratings) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const headers = monitoringHeaders(job);
  const report = (rank: number, step: number, examples: number, examplesPerSec: number, extra: { done?: true; timing?: { computeMs: number; serdeMs: number; waitMs: number } }): void => {
    publishLarge(nc, subjects.loss, lossReportCodec.encode({ job, rank, step, epoch: 0, loss: 0, examples, examplesPerSec, strategy: o.strategy, backend: 'js', ts: Date.now(), ...extra }), {
      headers,
    });
  };
  for (const rank of o.ranks) {
    const res = await runKnnWorker({
      nc,
      job,
      rank,
      worldSize: o.worldSize,
      data,
      options: s.options,
      blocks: s.blocks,
      log,
      onBlock: (p) => {
        const rows = p.block.to - p.block.from;
        report(rank, p.done, rows, (1000 * rows) / Math.max(p.computeMs, 1e-3), { timing: { computeMs: p.computeMs, serdeMs: 0, waitMs: p.sendMs } });
      },
    });
    report(rank, res.blocks, 0, 0, { done: true });
    log(`rank ${rank}: done, ${res.blocks} block(s), ${res.rows} rows in ${res.seconds.toFixed(1)} s`);
  }
  await nc.flush();
}

// ---------------------------------------------------------------------------------------------
// Evaluator.

/** RMSE/MAE at the configured k, at each k of KNN_SWEEP up to kMax ('rmse@20', …), and the global mean's RMSE. */
export function knnMetrics(model: KnnModel, test: Ratings): Record<string, number> {
  // sweepK answers in the order asked: the configured k first.
  const sweep = model.sweepK(test, [...new Set([model.k, ...KNN_SWEEP.filter((k) => k <= model.neighbours.kMax)])]);
  const metrics: Record<string, number> = { rmse: sweep[0].rmse, mae: sweep[0].mae };
  for (const p of [...sweep].sort((a, b) => a.k - b.k)) {
    metrics[`rmse@${p.k}`] = p.rmse;
    metrics[`mae@${p.k}`] = p.mae;
  }
  let se = 0;
  for (let i = 0; i < test.length; i++) se += (test.rating[i] - model.data.globalMean) ** 2;
  metrics['globalMean.rmse'] = Math.sqrt(se / test.length); // NaN on an empty test set
  return metrics;
}

export interface KnnEvaluator {
  /** Scores the merged neighbour lists (waiting up to waitMs for them) and publishes train.eval. */
  evaluate(final: boolean, waitMs?: number): Promise<EvalReport>;
  stop(): void;
}

/**
 * Evaluates once the aggregator has merged every block: when asked on <job>.eval.now (the
 * launcher's final evaluation) and, unasked, when a trainer reports done and the lists are ready
 * (for jobs run by hand). The lists never change after the merge, so the model is built once.
 */
export function serveKnnEvaluator(
  nc: NatsConnection,
  o: { readonly config: KnnConfigView; readonly data: KnnDataSource; readonly log?: (line: string) => void; readonly onReport?: (r: EvalReport) => void },
): KnnEvaluator {
  const log = o.log ?? (() => undefined);
  const { job } = o.config;
  const s = knnSettings(o.config.hyper);
  const steps = plannedBlocks(o.config.hyper);
  const loaded = Promise.all([loadKnnData(o.data, o.config.hyper), o.data.testSet()]);
  loaded.catch((err: Error) => log(`loading the data failed: ${err.message}`));
  let metrics: Promise<Record<string, number>> | undefined;
  const score = async (waitMs: number): Promise<Record<string, number>> => {
    const [data, test] = await loaded;
    const neighbours = await fetchNeighbours(nc, job, { waitMs });
    const t0 = performance.now();
    const m = knnMetrics(new KnnModel(data, s.options, neighbours), test);
    log(
      `${s.options.kind}-kNN rmse ${m.rmse.toFixed(4)} (k ${s.options.k}), mae ${m.mae.toFixed(4)}; global mean ${m['globalMean.rmse'].toFixed(4)}; ${test.length} test ratings in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    return m;
  };
  const evaluate = async (final: boolean, waitMs = 600_000): Promise<EvalReport> => {
    if (metrics === undefined) {
      metrics = score(waitMs);
      // A failure (lists not ready yet) must not stick: the next request tries again.
      metrics.catch(() => {
        metrics = undefined;
      });
    }
    const report: EvalReport = { job, step: steps, metrics: await metrics, ts: Date.now(), ...(final ? { final } : {}) };
    publishLarge(nc, subjects.eval, evalReportCodec.encode(report), { headers: monitoringHeaders(job) });
    o.onReport?.(report);
    return report;
  };
  let unasked: Promise<unknown> | undefined;
  const subs: Subscription[] = [
    nc.subscribe(subjects.loss, {
      callback: (_e, m) => {
        let done = false;
        try {
          const r = lossReportCodec.decode(m.data);
          done = r.job === job && r.done === true;
        } catch {
          /* not a loss report: ignore */
        }
        if (!done || unasked !== undefined) return;
        // Once per job: a trainer is done; if the lists are complete, score them now.
        unasked = evaluate(false, 0).catch((err: Error) => {
          unasked = undefined;
          if (!(err instanceof RemoteError && err.code === KNN_NOT_READY)) log(`evaluation failed: ${err.message}`);
        });
      },
    }),
    serveLarge(nc, subjects.evalNow(job), async (payload) => {
      const final = evalNowRequestCodec.decode(payload).final === true;
      return evalReportCodec.encode(await evaluate(final));
    }),
  ];
  log(`job ${job}: evaluating ${s.options.kind}-based kNN once the aggregator has every similarity block`);
  return { evaluate, stop: () => subs.forEach((x) => x.unsubscribe()) };
}

// ---------------------------------------------------------------------------------------------
// Launcher: the trained model.

/** Writes the merged lists as dir/neighbours.bin (the KnnNeighbours msgpack kind) and the configuration as dir/config.json. */
export async function saveKnnModel(nc: NatsConnection, job: string, dir: string, config: object): Promise<{ neighbours: string; config: string }> {
  const neighbours = await fetchNeighbours(nc, job, { waitMs: 60_000 });
  mkdirSync(dir, { recursive: true });
  const paths = { neighbours: join(dir, 'neighbours.bin'), config: join(dir, 'config.json') };
  writeFileSync(paths.neighbours, neighboursCodec.encode({ job, ...neighbours }));
  writeFileSync(paths.config, `${JSON.stringify(config, null, 2)}\n`);
  return paths;
}

/** Reads a neighbours.bin written by saveKnnModel (validated like a message off the wire). */
export function readNeighbours(path: string): Neighbours {
  const { job: _job, ...n } = neighboursCodec.decode(readFileSync(path));
  return n;
}
