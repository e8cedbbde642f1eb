// npx nx run trainer --strategy ps --rank 0        (contract: nx run trainer --strategy mirrored --rank 0)
// Fetches the job configuration from the aggregator, picks a TF.js backend, trains, and publishes
// every step's loss on train.loss (JSON, readable with `nats sub train.loss`).
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, intFlag, registerActorService, runActor } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient, fetchJobConfig } from '@actorflow/feed';
import { createModel, exampleKindOf } from '@actorflow/models';
import { lossReportCodec, monitoringHeaders, subjects } from '@actorflow/protocol';
import { ProcessGroup } from '@actorflow/collectives';
import { PsClient, runMirroredTrainer, runPsTrainer } from '@actorflow/strategies';
import { RemoteError, requestWithRetry, retryAttemptMs, numberFlag, type NatsConnection } from '@actorflow/bus';
import { trainerStateCodec, type TrainerState } from '@actorflow/protocol';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { KNN_MODEL, runKnnTrainer } from '@actorflow/knn';

const usage = `Usage: npx nx run trainer -- --strategy ps|mirrored --rank R [options]
  --job ID               job id (default local)
  --strategy ps|mirrored ps: asynchronous parameter server; mirrored: synchronous all-reduce (default ps)
  --rank R               this trainer's rank (default: $RANK, else 0 — the torchrun convention)
  --ranks R1,R2,…        mirrored: run several ranks in this process (interoperates with --rank elsewhere)
  --world-size N         mirrored: ranks in the group (default: $WORLD_SIZE, else the aggregator's --world-size)
                         ($LOCAL_RANK, when set, is shown in the log lines)
  --collective-timeout S mirrored: seconds a rank may stay silent before the step fails naming it (default 60)
  --snapshot-every K     mirrored: rank 0 sends its replica (with optimizer state) to the aggregator every K steps
                         (default 100, and at the end); restarted ranks resume from it
  --snapshot-seconds S   mirrored: … and at least every S seconds
  --generation G         mirrored: the group's incarnation (the launcher counts re-formations; default 0)
  --first-step N         ps: number this trainer's steps from N (a restarted trainer continues its count)
  --data-shards K        data shards (default: as the data shards report)
  --backend NAME         tensorflow|wasm|cpu (default: best available)
  --loss-every K         publish train.loss every K steps (default 1)
  --allreduce star|ring  mirrored: star (through rank 0, rank order) or ring (dense gradients between neighbours); --ps-shards: accepted
${busFlagsHelp}`;

await runActor('trainer', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' },
      strategy: { type: 'string' },
      rank: { type: 'string' },
      'world-size': { type: 'string' },
      'data-shards': { type: 'string' },
      'ps-shards': { type: 'string' },
      backend: { type: 'string' },
      'loss-every': { type: 'string' },
      allreduce: { type: 'string' },
      'collective-timeout': { type: 'string' },
      ranks: { type: 'string' },
      'snapshot-every': { type: 'string' },
      'snapshot-seconds': { type: 'string' },
      generation: { type: 'string' },
      'first-step': { type: 'string' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const allreduce = v.allreduce ?? 'star';
  if (allreduce !== 'star' && allreduce !== 'ring') throw new FlagError(`--allreduce must be star or ring, got '${allreduce}'`);
  const job = v.job ?? 'local';
  // torchrun convention: RANK / WORLD_SIZE / LOCAL_RANK from the environment when the flags are absent.
  const envRank = process.env.RANK !== undefined && process.env.RANK !== '' ? process.env.RANK : undefined;
  const envWorld = process.env.WORLD_SIZE !== undefined && process.env.WORLD_SIZE !== '' ? process.env.WORLD_SIZE : undefined;
  const localRank = process.env.LOCAL_RANK !== undefined && process.env.LOCAL_RANK !== '' ? intFlag('local-rank (from $LOCAL_RANK)', process.env.LOCAL_RANK, 0) : undefined;
  const rank = v.rank !== undefined ? intFlag('rank', v.rank, 0) : intFlag('rank (from $RANK)', envRank, 0);
  const worldSizeFlag = v['world-size'] ?? envWorld;
  const lossEvery = intFlag('loss-every', v['loss-every'], 1, 1);
  const log = actorLog(`trainer ${v.ranks ?? rank}${localRank !== undefined ? ` (local ${localRank})` : ''}`);
  const conn = await connectActor(v, { name: `trainer-${rank}`, log });
  let stepsDone = 0; // live stats of this process, for $SRV.STATS
  let examplesDone = 0;
  await registerActorService(conn.nc, { role: 'trainer', job, rank: v.ranks ?? rank, stats: () => ({ steps: stepsDone, examples: examplesDone }) });
  exitOnSignals(conn);
  const config = await fetchJobConfig(conn.nc, job, 600_000, (n) => {
    if (n === 1) log(`waiting for the aggregator of job ${job} …`);
  });
  if (config.model === KNN_MODEL) {
    // kNN has no gradients: under either strategy the ranks split the similarity blocks (libs/knn).
    const ranks = v.ranks !== undefined ? v.ranks.split(',').map((r) => intFlag('ranks', r.trim(), 0)) : [rank];
    await runKnnTrainer(conn.nc, { config, data: new DataClient(conn.nc, { job, shards: 1 }), ranks, worldSize: intFlag('world-size', worldSizeFlag, config.worldSize, 1), strategy, log });
    await conn.nc.drain();
    process.exit(0);
  }
  const info = await new DataClient(conn.nc, { job, shards: 1 }).waitForInfo(600_000);
  const engine = await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log });
  const model = createModel(config.model, config.hyper);
  // What the data shards must serve this model: its kind of examples, and users' histories if it needs them.
  const feedKind = { kind: exampleKindOf(model), ...(model.needsHistory === true ? { history: true } : {}) };
  const timeoutMs = retryAttemptMs();
  const client = new PsClient(conn.nc, { job, shards: config.psShards, rank, timeoutMs, log });
  const feed = new DataClient(conn.nc, { job, shards: intFlag('data-shards', v['data-shards'], info.shards, 1), timeoutMs, log });
  const hdrs = natsHeaders();
  for (const [k, val] of Object.entries(monitoringHeaders(job))) hdrs.set(k, val);
  const started = performance.now();
  let examplesSeen = 0;
  let lastLog = 0;
  let lastEpoch = 0;
  let lastLoss = Number.NaN;
  const publish = (step: number, epoch: number, loss: number, examples: number, done: boolean, timing?: { computeMs: number; serdeMs: number; waitMs: number }): void => {
    const secs = (performance.now() - started) / 1000;
    conn.nc.publish(
      subjects.loss,
      lossReportCodec.encode({
        job,
        rank,
        step,
        epoch,
        loss,
        examples,
        examplesPerSec: secs > 0 ? examplesSeen / secs : 0,
        strategy,
        backend: engine.name,
        ts: Date.now(),
        ...(done ? { done } : {}),
        ...(timing !== undefined ? { timing } : {}),
      }),
      { headers: hdrs },
    );
  };
  if (strategy === 'mirrored') {
    const worldSize = intFlag('world-size', worldSizeFlag, config.worldSize, 1);
    const ranks = v.ranks !== undefined ? v.ranks.split(',').map((r) => intFlag('ranks', r.trim(), 0)) : [rank];
    for (const r of ranks) if (r >= worldSize) throw new FlagError(`rank ${r} is not below --world-size ${worldSize}`);
    const collectiveTimeoutMs = intFlag('collective-timeout', v['collective-timeout'], 60, 1) * 1000;
    const snapshotEvery = intFlag('snapshot-every', v['snapshot-every'], 100, 1);
    const snapshotSeconds = numberFlag('snapshot-seconds', v['snapshot-seconds'], 0, { min: 0 });
    const generation = intFlag('generation', v.generation, 0);
    // The last replica rank 0 sent, if any: every rank resumes from the same bytes (docs/RELIABILITY.md).
    const resumeBytes = await fetchTrainerState(conn.nc, job);
    const saved = resumeBytes !== undefined ? trainerStateCodec.decode(resumeBytes) : undefined;
    // A group re-formed with fewer ranks: the global batch is worldSize × batch, so the position in
    // the epoch moves to the global step that starts at the same example.
    const resume = saved !== undefined && saved.worldSize !== worldSize ? { ...saved, worldSize, stepInEpoch: Math.floor((saved.stepInEpoch * saved.worldSize) / worldSize) } : saved;
    if (resume !== undefined) log(`resuming from the replica of step ${resume.step} (epoch ${resume.epoch + 1}, step ${resume.stepInEpoch} of it)`);
    log(`job ${job}: mirrored rank(s) ${ranks.join(',')} of ${worldSize}${generation > 0 ? `, generation ${generation}` : ''}, ${config.model} on ${engine.name}; waiting for the group …`);
    await Promise.all(
      ranks.map(async (r) => {
        const pg = await ProcessGroup.init({ nc: conn.nc, job, worldSize, rank: r, timeoutMs: collectiveTimeoutMs, generation });
        const rlog = actorLog(`trainer ${r}`);
        const batches = feed.distributed(r, worldSize, feedKind, resume !== undefined ? { epoch: resume.epoch, step: resume.stepInEpoch } : undefined);
        let seen = 0;
        let last = 0;
        let lastLoss = Number.NaN;
        let lastSent = performance.now();
        const checkpoint = async (state: () => TrainerState): Promise<void> => {
          lastSent = performance.now();
          await requestWithRetry(conn.nc, subjects.ctl(job, 'checkpoint'), trainerStateCodec.encode(state()), { attemptTimeoutMs: 60_000 });
        };
        const res = await runMirroredTrainer({
          job,
          pg,
          engine,
          model,
          data: batches,
          optimizer: config.optimizer,
          seed: config.seed,
          allreduce,
          onStep: (s) => {
            seen += s.examples;
            lastLoss = s.loss;
            stepsDone = Math.max(stepsDone, s.step);
            examplesDone += s.localExamples;
            if (s.step % lossEvery === 0) {
              const secs = (performance.now() - started) / 1000;
              conn.nc.publish(
                subjects.loss,
                lossReportCodec.encode({
                  job,
                  rank: r,
                  step: s.step,
                  epoch: 0,
                  loss: s.loss,
                  examples: s.localExamples,
                  examplesPerSec: secs > 0 ? seen / worldSize / secs : 0,
                  strategy,
                  backend: engine.name,
                  ts: Date.now(),
                  timing: s.timing,
                }),
                { headers: hdrs },
              );
            }
            const now = performance.now();
            if (now - last > 2000) {
              last = now;
              rlog(`step ${s.step}, loss ${s.loss.toFixed(4)}, ${Math.round(seen / ((now - started) / 1000))} ex/s over the group`);
            }
          },
          ...(resume !== undefined ? { resume } : {}),
          ...(r === 0
            ? {
                onParams: (step: number, _params: unknown, state: () => TrainerState) =>
                  step % snapshotEvery === 0 || (snapshotSeconds > 0 && performance.now() - lastSent >= snapshotSeconds * 1000) ? checkpoint(state) : undefined,
              }
            : {}),
        });
        if (r === 0) await checkpoint(res.state);
        // The final report carries the last step's loss and the run's examples/s (not NaN / 0, which the monitor would call divergence).
        const secs = (performance.now() - started) / 1000;
        conn.nc.publish(
          subjects.loss,
          lossReportCodec.encode({
            job,
            rank: r,
            step: res.steps,
            epoch: 0,
            loss: lastLoss,
            examples: 0,
            examplesPerSec: secs > 0 ? seen / worldSize / secs : 0,
            strategy,
            backend: engine.name,
            ts: Date.now(),
            done: true,
          }),
          { headers: hdrs },
        );
        pg.destroy();
        rlog(`done: ${res.steps} steps`);
      }),
    );
    await conn.nc.flush();
    await conn.nc.drain();
    process.exit(0);
  }
  const firstStep = intFlag('first-step', v['first-step'], 0);
  log(`job ${job}: training ${config.model} with ps over ${config.psShards} shard(s) on ${engine.name}${firstStep > 0 ? ` (restarted: steps count on from ${firstStep})` : ''}`);
  const result = await runPsTrainer({
    engine,
    model,
    client,
    rank,
    seed: config.seed,
    data: feed.shared(feedKind),
    onStep: (s) => {
      examplesSeen += s.examples;
      stepsDone = s.step;
      examplesDone = examplesSeen;
      lastEpoch = s.epoch;
      lastLoss = s.loss;
      if (s.step % lossEvery === 0) publish(firstStep + s.step, s.epoch, s.loss, s.examples, false, s.timing);
      const now = performance.now();
      if (now - lastLog > 2000) {
        lastLog = now;
        log(`step ${s.step}, epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}, ${Math.round(examplesSeen / ((now - started) / 1000))} ex/s`);
      }
    },
  });
  publish(firstStep + result.steps, lastEpoch, lastLoss, 0, true);
  await conn.nc.flush();
  log(`done: ${result.steps} steps, ${result.examples} examples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  await conn.nc.drain();
  process.exit(0);
});

/**
 * The replica the aggregator holds for this job (sent by rank 0 of this or an earlier group), or
 * undefined when there is none yet (a fresh job). Retried while the aggregator is away (restarting).
 */
async function fetchTrainerState(nc: NatsConnection, job: string): Promise<Uint8Array | undefined> {
  try {
    return await requestWithRetry(nc, subjects.ctl(job, 'state'), new Uint8Array(0), { attemptTimeoutMs: 30_000 });
  } catch (err) {
    if (err instanceof RemoteError && err.code === 'NO_STATE') return undefined;
    throw err;
  }
}
