// npx nx run trainer --strategy ps --rank 0        (contract: nx run trainer --strategy mirrored --rank 0)
// Fetches the job configuration from the aggregator, picks a TF.js backend, trains, and publishes
// every step's loss on train.loss (JSON, readable with `nats sub train.loss`).
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, intFlag, runActor } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient, fetchJobConfig } from '@actorflow/feed';
import type { RatingsBatch } from '@actorflow/data';
import { createModel, type TrainableModel } from '@actorflow/models';
import { lossReportCodec, monitoringHeaders, subjects } from '@actorflow/protocol';
import { PsClient, runPsTrainer } from '@actorflow/strategies';
import { headers as natsHeaders } from '@nats-io/nats-core';

const usage = `Usage: npx nx run trainer -- --strategy ps|mirrored --rank R [options]
  --job ID               job id (default local)
  --strategy ps          ps (asynchronous parameter server); mirrored is not implemented yet
  --rank R               this trainer's rank (default 0)
  --world-size N         trainers in the job (reported only, in ps)
  --data-shards K        data shards (default: as the data shards report)
  --backend NAME         tensorflow|wasm|cpu (default: best available)
  --loss-every K         publish train.loss every K steps (default 1)
  --allreduce, --ps-shards, --collective-timeout   accepted for launcher symmetry
${busFlagsHelp}`;

await runActor('trainer', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' }, strategy: { type: 'string' }, rank: { type: 'string' }, 'world-size': { type: 'string' }, 'data-shards': { type: 'string' },
      'ps-shards': { type: 'string' }, backend: { type: 'string' }, 'loss-every': { type: 'string' }, allreduce: { type: 'string' }, 'collective-timeout': { type: 'string' },
      help: { type: 'boolean' }, ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const strategy = v.strategy ?? 'ps';
  if (strategy === 'mirrored') throw new FlagError('the mirrored strategy is not implemented yet (see the README status); use --strategy ps');
  if (strategy !== 'ps') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const job = v.job ?? 'local';
  const rank = intFlag('rank', v.rank, 0);
  const lossEvery = intFlag('loss-every', v['loss-every'], 1, 1);
  const log = actorLog(`trainer ${rank}`);
  const conn = await connectActor(v, { name: `trainer-${rank}`, log });
  exitOnSignals(conn);
  const config = await fetchJobConfig(conn.nc, job, 600_000, (n) => {
    if (n === 1) log(`waiting for the aggregator of job ${job} …`);
  });
  const data = new DataClient(conn.nc, { job, shards: 1 });
  const info = await data.waitForInfo(600_000);
  const engine = await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log });
  const model = createModel(config.model, config.hyper) as TrainableModel<RatingsBatch>;
  const client = new PsClient(conn.nc, { job, shards: config.psShards });
  const feed = new DataClient(conn.nc, { job, shards: intFlag('data-shards', v['data-shards'], info.shards, 1) });
  const hdrs = natsHeaders();
  for (const [k, val] of Object.entries(monitoringHeaders(job))) hdrs.set(k, val);
  const started = performance.now();
  let examplesSeen = 0;
  let lastLog = 0;
  let lastEpoch = 0;
  let lastLoss = Number.NaN;
  const publish = (step: number, epoch: number, loss: number, examples: number, done: boolean, timing?: { computeMs: number; waitMs: number }): void => {
    const secs = (performance.now() - started) / 1000;
    conn.nc.publish(
      subjects.loss,
      lossReportCodec.encode({ job, rank, step, epoch, loss, examples, examplesPerSec: secs > 0 ? examplesSeen / secs : 0, strategy, backend: engine.name, ts: Date.now(), ...(done ? { done } : {}), ...(timing !== undefined ? { timing: { ...timing, serdeMs: 0 } } : {}) }),
      { headers: hdrs },
    );
  };
  log(`job ${job}: training ${config.model} with ps over ${config.psShards} shard(s) on ${engine.name}`);
  const result = await runPsTrainer({
    engine,
    model,
    client,
    rank,
    data: feed.shared(),
    onStep: (s) => {
      examplesSeen += s.examples;
      lastEpoch = s.epoch;
      lastLoss = s.loss;
      if (s.step % lossEvery === 0) publish(s.step, s.epoch, s.loss, s.examples, false, s.timing);
      const now = performance.now();
      if (now - lastLog > 2000) {
        lastLog = now;
        log(`step ${s.step}, epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}, ${Math.round(examplesSeen / ((now - started) / 1000))} ex/s`);
      }
    },
  });
  publish(result.steps, lastEpoch, lastLoss, 0, true);
  await conn.nc.flush();
  log(`done: ${result.steps} steps, ${result.examples} examples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await conn.nc.drain();
  process.exit(0);
});
