// Runs one local job end to end: NATS, data shards, aggregator(s), evaluator, trainers; then the
// final evaluation and checkpoint. The order matters: each actor asks the previous ones for its
// configuration (see docs/DESIGN.md), so we wait for each layer to answer before starting the next.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NatsServer, connect, requestLarge, type NatsConnection } from '@actorflow/bus';
import { saveParams } from '@actorflow/embeddings';

import { createModel, exampleKindOf } from '@actorflow/models';
import { snapshotCodec, subjects } from '@actorflow/protocol';
import { PsClient, mergeSnapshots, nonFiniteParam, type ShardStats } from '@actorflow/strategies';
import { KNN_MODEL, plannedBlocks, saveKnnModel } from '@actorflow/knn';
import { dataOptionFlags, type JobConfig } from '@actorflow/feed';
import type { JobPlan } from './flags.ts';
import { Progress, type Throughput } from './progress.ts';
import { Supervisor, type ActorSpec } from './supervisor.ts';
import { freePort, watchCommands } from './watch.ts';

/** metrics.json: the final metrics, and (Partial<Throughput>) the training speed measured from the trainers' reports. */
export interface JobResult extends Partial<Throughput> {
  readonly job: string;
  readonly strategy: string;
  readonly model: string;
  readonly metrics: Readonly<Record<string, number>>;
  readonly steps: number;
  readonly seconds: number;
  readonly noiseFloorRmse?: number;
  readonly out: string;
}

export class JobFailedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JobFailedError';
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function waitForAnswer(nc: NatsConnection, subject: string, what: string, timeoutMs: number, failed: Promise<never>, payload: unknown = {}): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const reply = await Promise.race([nc.request(subject, enc.encode(JSON.stringify(payload)), { timeout: 2000 }), failed]);
      return parseReply(reply.data);
    } catch (err) {
      if (err instanceof Error && err.name === 'ActorFailedError') throw err;
      lastError = (err as Error).message;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new JobFailedError(`${what} did not answer on ${subject} within ${timeoutMs / 1000} s (${lastError})`);
}

function parseReply(data: Uint8Array): unknown {
  const text = dec.decode(data);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function launchJob(plan: JobPlan, root: string, log: (line: string) => void): Promise<JobResult> {
  const started = Date.now();
  const out = resolve(root, plan.out);
  mkdirSync(out, { recursive: true });
  let server: NatsServer | undefined;
  let natsUrl = plan.natsUrl;
  if (natsUrl === undefined) {
    server = await NatsServer.start();
    natsUrl = server.url;
    log(`nats-server started at ${natsUrl}`);
  } else {
    log(`using NATS at ${natsUrl}`);
  }
  for (const line of watchCommands(natsUrl, plan.job)) log(line);
  const nc = await connect({ servers: [natsUrl], name: `job-${plan.job}` });
  const sup = new Supervisor({
    root,
    env: { NATS_URL: natsUrl },
    logDir: resolve(out, 'logs'),
    onLine: plan.verbose ? (actor, line) => log(`[${actor}] ${line}`) : undefined,
  });
  if (plan.monitor === true) {
    const port = await freePort();
    sup.start(actor('monitor', 'monitor', 'service', ['--job', plan.job, '--port', `${port}`, '--no-tty']));
    log(`monitor: http://127.0.0.1:${port}/`);
  }
  const progress = new Progress(plan, log);
  const failed = sup.failed();
  failed.catch(() => undefined); // observed below via races; avoid an unhandled rejection
  const lossSub = nc.subscribe(subjects.loss, { callback: (_e, m) => progress.onLoss(parseReply(m.data)) });
  const evalSub = nc.subscribe(subjects.eval, { callback: (_e, m) => progress.onEval(parseReply(m.data)) });
  const common = ['--job', plan.job];
  const dataShards = plan.dataShards;
  try {
    log(
      `job ${plan.job}: ${plan.strategy}, model ${plan.model}, ${plan.trainers} trainer(s), ${dataShards} data shard(s)` +
        (plan.strategy === 'ps' && plan.model !== KNN_MODEL ? `, ${plan.psShards} parameter-server shard(s)` : '') +
        `; logs in ${out}/logs`,
    );
    for (let i = 0; i < dataShards; i++) {
      sup.start(
        actor(`data-shard-${i}`, 'data-shard', 'service', [
          ...common,
          '--shard',
          `${i}`,
          '--of',
          `${dataShards}`,
          '--dataset',
          plan.dataset,
          '--split',
          plan.split,
          '--seed',
          `${plan.seed}`,
          '--epochs',
          `${plan.epochs}`,
          '--batch-size',
          `${plan.batchSize}`,
          ...dataOptionFlags(plan.data),
        ]),
      );
    }
    const info = (await waitForAnswer(nc, subjects.dataInfo(plan.job), 'the data shards', 600_000, failed)) as Record<string, unknown>;
    progress.setDataInfo(info);
    log(
      info.kind === 'images'
        ? `data: ${String(info.trainRows)} train / ${String(info.testRows)} test images`
        : `data: ${String(info.numUsers)} users, ${String(info.numItems)} items, ${String(info.trainRows)} train / ${String(info.testRows)} test ratings`,
    );

    const knn = plan.model === KNN_MODEL; // no parameters: one aggregator collects the similarity blocks
    const aggregators = plan.strategy === 'ps' && !knn ? plan.psShards : 1;
    for (let i = 0; i < aggregators; i++) {
      sup.start(
        actor(`aggregator-${i}`, 'aggregator', 'service', [
          ...common,
          '--strategy',
          plan.strategy,
          '--ps-shard',
          `${i}`,
          '--ps-shards',
          `${aggregators}`,
          '--world-size',
          `${plan.trainers}`,
          '--data-shards',
          `${dataShards}`,
          '--model',
          plan.model,
          '--seed',
          `${plan.seed}`,
          ...plan.modelFlags,
        ]),
      );
    }
    const config = (await waitForAnswer(nc, subjects.ctl(plan.job, 'config'), 'the aggregator', 120_000, failed)) as JobConfig;
    const model = knn ? undefined : createModel(config.model, config.hyper);
    // Progress counts steps over the model's examples: rating rows, users or items, or images.
    const kind = model === undefined ? undefined : exampleKindOf(model);
    if (kind === 'user-rows' || kind === 'item-rows') progress.setExamples(kind === 'user-rows' ? num(info.trainUsers) : num(info.trainItems));
    // kNN steps are similarity blocks: summed over the ranks in ps, the busiest rank's in mirrored.
    if (knn) progress.setTotalSteps(plan.strategy === 'ps' ? plannedBlocks(config.hyper) : Math.ceil(plannedBlocks(config.hyper) / plan.trainers));
    sup.start(
      actor('evaluator', 'evaluator', 'service', [
        ...common,
        '--strategy',
        plan.strategy,
        '--ps-shards',
        `${aggregators}`,
        '--data-shards',
        `${dataShards}`,
        '--every',
        `${plan.evalEvery}`,
        '--out',
        out,
      ]),
    );

    for (let r = 0; r < plan.trainers; r++) {
      sup.start(
        actor(`trainer-${r}`, 'trainer', 'worker', [
          ...common,
          '--strategy',
          plan.strategy,
          '--rank',
          `${r}`,
          '--world-size',
          `${plan.trainers}`,
          '--ps-shards',
          `${aggregators}`,
          '--data-shards',
          `${dataShards}`,
          '--allreduce',
          plan.allreduce,
          ...(plan.backend !== undefined ? ['--backend', plan.backend] : []),
        ]),
      );
    }
    await sup.waitForWorkers();
    progress.finish();
    log('trainers finished; final evaluation…');
    const evalReport = (await waitForAnswer(nc, subjects.evalNow(plan.job), 'the evaluator', 300_000, failed, { final: true })) as {
      step?: number;
      metrics?: Record<string, number>;
    };
    // The trained model: every parameter shard's rows merged into one file, with its configuration
    // and the dataset it was trained on (so `recommend` can map ids and exclude seen items).
    let checkpoint: Record<string, string>;
    if (model === undefined) {
      // kNN: the merged neighbour lists (model/neighbours.bin) instead of parameters.
      checkpoint = await saveKnnModel(nc, plan.job, resolve(out, 'model'), { ...config, dataset: { source: plan.dataset, split: plan.split, seed: plan.seed, ...plan.data } });
    } else {
      const snapshots =
        plan.strategy === 'mirrored'
          ? [snapshotCodec.decode(await requestLarge(nc, subjects.ctl(plan.job, 'snapshot'), new Uint8Array(0), { timeoutMs: 60_000 }))]
          : await new PsClient(nc, { job: plan.job, shards: config.psShards }).snapshot();
      const params = mergeSnapshots(model, config.seed, snapshots);
      // Never save a corrupted model: a NaN/Inf anywhere means training went wrong.
      const bad = nonFiniteParam(params);
      if (bad !== undefined)
        throw new JobFailedError(
          `refusing to save the model: parameter '${bad.name}' holds ${bad.value} at index ${bad.index} (training diverged or was fed bad values); nothing was written to ${resolve(out, 'model')}`,
        );
      mkdirSync(resolve(out, 'model'), { recursive: true });
      checkpoint = { params: resolve(out, 'model', 'params.bin'), config: resolve(out, 'model', 'config.json') };
      saveParams(checkpoint.params, { tables: Object.values(params.tables), dense: params.dense, meta: { job: plan.job, model: config.model } });
      const ratingRange = Array.isArray(info.ratingRange) ? { ratingRange: info.ratingRange } : {};
      writeFileSync(checkpoint.config, `${JSON.stringify({ ...config, dataset: { source: plan.dataset, split: plan.split, seed: plan.seed, ...plan.data }, ...ratingRange }, null, 2)}\n`);
    }
    // Per parameter shard: pushes applied, dropped, rejected by reason and by sender.
    let psShardStats: ShardStats[] | undefined;
    if (plan.strategy === 'ps' && model !== undefined) psShardStats = await new PsClient(nc, { job: plan.job, shards: config.psShards }).stats().catch(() => undefined);
    const throughput = progress.throughput();
    const result: JobResult = {
      job: plan.job,
      strategy: plan.strategy,
      model: plan.model,
      metrics: evalReport.metrics ?? {},
      steps: evalReport.step ?? progress.maxStep,
      seconds: (Date.now() - started) / 1000,
      ...(typeof info.noiseFloorRmse === 'number' ? { noiseFloorRmse: info.noiseFloorRmse } : {}),
      out,
      ...throughput,
    };
    writeFileSync(resolve(out, 'metrics.json'), `${JSON.stringify({ ...result, checkpoint, ...(psShardStats !== undefined ? { psShards: psShardStats } : {}) }, null, 2)}\n`);
    return result;
  } catch (err) {
    throw err instanceof JobFailedError ? err : new JobFailedError((err as Error).message, { cause: err });
  } finally {
    lossSub.unsubscribe();
    evalSub.unsubscribe();
    await sup.stopAll();
    await nc.close();
    await server?.stop();
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function actor(name: string, app: string, role: ActorSpec['role'], args: string[]): ActorSpec {
  return { name, entry: `apps/${app}/main.ts`, role, args };
}
