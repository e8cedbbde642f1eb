// The trainer of gradient models: ps (pull, compute, push against the parameter shards) or
// mirrored (a ProcessGroup all-reducing gradients; rank 0 sends its replica to the aggregator),
// publishing every step's loss on train.loss.
import { FlagError, RemoteError, actorLog, intFlag, numberFlag, requestWithRetry, retryAttemptMs, type NatsConnection } from '@actorflow/bus';
import { ProcessGroup } from '@actorflow/collectives';
import { selectBackend } from '@actorflow/engine';
import { DataClient } from '@actorflow/feed';
import { createModel, exampleKindOf } from '@actorflow/models';
import { lossReportCodec, monitoringHeaders, subjects, trainerStateCodec, type LossReport, type TrainerState } from '@actorflow/protocol';
import { PsClient, runMirroredTrainer, runPsTrainer } from '@actorflow/strategies';
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { FlagValues, TrainerOptions } from './workload.ts';

/** Without a validation set, the epoch-end replica goes at most this often (see onEpochEnd below). */
const EPOCH_REPLICA_SECONDS = 5;

const str = (v: FlagValues, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

export async function runGradientTrainer(o: TrainerOptions): Promise<{ steps: number }> {
  const { nc, config, job, strategy, rank, flags: v, log } = o;
  const allreduce = str(v, 'allreduce') ?? 'star';
  if (allreduce !== 'star' && allreduce !== 'ring') throw new FlagError(`--allreduce must be star or ring, got '${allreduce}'`);
  const lossEvery = intFlag('loss-every', str(v, 'loss-every'), 1, 1);
  const info = await new DataClient(nc, { job, shards: 1 }).waitForInfo(600_000);
  const backend = str(v, 'backend');
  const engine = await selectBackend({ ...(backend !== undefined ? { backend } : {}), log });
  const model = createModel(config.model, config.hyper);
  // What the data shards must serve this model: its kind of examples, and users' histories if it needs them.
  const feedKind = { kind: exampleKindOf(model), ...(model.needsHistory === true ? { history: true } : {}) };
  const timeoutMs = retryAttemptMs();
  const feed = new DataClient(nc, { job, shards: intFlag('data-shards', str(v, 'data-shards'), info.shards, 1), timeoutMs, log });
  const hdrs = natsHeaders();
  for (const [k, val] of Object.entries(monitoringHeaders(job))) hdrs.set(k, val);
  const started = performance.now();
  const publish = (r: Omit<LossReport, 'job' | 'strategy' | 'backend' | 'ts'>): void => {
    nc.publish(subjects.loss, lossReportCodec.encode({ job, strategy, backend: engine.name, ts: Date.now(), ...r }), { headers: hdrs });
  };
  let stepsDone = 0;
  let examplesDone = 0;
  if (strategy === 'mirrored') {
    const worldSize = o.worldSize;
    for (const r of o.ranks) if (r >= worldSize) throw new FlagError(`rank ${r} is not below --world-size ${worldSize}`);
    const collectiveTimeoutMs = intFlag('collective-timeout', str(v, 'collective-timeout'), 60, 1) * 1000;
    const snapshotEvery = intFlag('snapshot-every', str(v, 'snapshot-every'), 100, 1);
    const snapshotSeconds = numberFlag('snapshot-seconds', str(v, 'snapshot-seconds'), 0, { min: 0 });
    const generation = intFlag('generation', str(v, 'generation'), 0);
    // The last replica rank 0 sent, if any: every rank resumes from the same bytes (docs/RELIABILITY.md).
    const resumeBytes = await fetchTrainerState(nc, job);
    const saved = resumeBytes !== undefined ? trainerStateCodec.decode(resumeBytes) : undefined;
    // A group re-formed with fewer ranks: the global batch is worldSize × batch, so the position in
    // the epoch moves to the global step that starts at the same example.
    const resume = saved !== undefined && saved.worldSize !== worldSize ? { ...saved, worldSize, stepInEpoch: Math.floor((saved.stepInEpoch * saved.worldSize) / worldSize) } : saved;
    if (resume !== undefined) log(`resuming from the replica of step ${resume.step} (epoch ${resume.epoch + 1}, step ${resume.stepInEpoch} of it)`);
    log(`job ${job}: mirrored rank(s) ${o.ranks.join(',')} of ${worldSize}${generation > 0 ? `, generation ${generation}` : ''}, ${config.model} on ${engine.name}; waiting for the group …`);
    let steps = 0;
    await Promise.all(
      o.ranks.map(async (r) => {
        const pg = await ProcessGroup.init({ nc, job, worldSize, rank: r, timeoutMs: collectiveTimeoutMs, generation });
        const rlog = actorLog(`trainer ${r}`);
        const batches = feed.distributed(r, worldSize, feedKind, resume !== undefined ? { epoch: resume.epoch, step: resume.stepInEpoch } : undefined);
        let seen = 0;
        let last = 0;
        let lastLoss = Number.NaN;
        let lastSent = performance.now();
        const checkpoint = async (state: () => TrainerState): Promise<void> => {
          lastSent = performance.now();
          await requestWithRetry(nc, subjects.ctl(job, 'checkpoint'), trainerStateCodec.encode(state()), { attemptTimeoutMs: 60_000 });
        };
        const rate = (): number => {
          const secs = (performance.now() - started) / 1000;
          return secs > 0 ? seen / worldSize / secs : 0;
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
            o.onProgress?.(stepsDone, examplesDone);
            if (s.step % lossEvery === 0) publish({ rank: r, step: s.step, epoch: s.epoch, loss: s.loss, examples: s.localExamples, examplesPerSec: rate(), timing: s.timing });
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
                // Each epoch's last replica too, before the next epoch's first step (and so before its loss
                // report): the launcher's early stopper scores it (apps/job/src/early-stop.ts) — every
                // epoch when the data has a validation set. Without one, only the evaluator's periodic
                // scores read it: then at most every EPOCH_REPLICA_SECONDS, since each replica (the
                // whole model with its optimizer state) is a round trip that stalls the step — a third
                // of a 100-epoch MF job's time when it went every epoch.
                onEpochEnd: (_epoch: number, _step: number, state: () => TrainerState) =>
                  (info.validationRows ?? 0) > 0 || performance.now() - lastSent >= EPOCH_REPLICA_SECONDS * 1000 ? checkpoint(state) : undefined,
              }
            : {}),
        });
        if (r === 0) await checkpoint(res.state);
        // The final report carries the last step's loss and the run's examples/s (not NaN / 0, which the monitor would call divergence).
        publish({ rank: r, step: res.steps, epoch: 0, loss: lastLoss, examples: 0, examplesPerSec: rate(), done: true });
        pg.destroy();
        steps = Math.max(steps, res.steps);
        rlog(`done: ${res.steps} steps`);
      }),
    );
    await nc.flush();
    return { steps };
  }
  const firstStep = intFlag('first-step', str(v, 'first-step'), 0);
  const client = new PsClient(nc, { job, shards: config.psShards, rank, timeoutMs, log });
  log(`job ${job}: training ${config.model} with ps over ${config.psShards} shard(s) on ${engine.name}${firstStep > 0 ? ` (restarted: steps count on from ${firstStep})` : ''}`);
  let lastLog = 0;
  let lastEpoch = 0;
  let lastLoss = Number.NaN;
  const rate = (): number => {
    const secs = (performance.now() - started) / 1000;
    return secs > 0 ? examplesDone / secs : 0;
  };
  const result = await runPsTrainer({
    engine,
    model,
    client,
    rank,
    seed: config.seed,
    data: feed.shared(feedKind),
    onStep: (s) => {
      examplesDone += s.examples;
      stepsDone = s.step;
      o.onProgress?.(stepsDone, examplesDone);
      lastEpoch = s.epoch;
      lastLoss = s.loss;
      if (s.step % lossEvery === 0) publish({ rank, step: firstStep + s.step, epoch: s.epoch, loss: s.loss, examples: s.examples, examplesPerSec: rate(), timing: s.timing });
      const now = performance.now();
      if (now - lastLog > 2000) {
        lastLog = now;
        log(`step ${s.step}, epoch ${s.epoch + 1}, loss ${s.loss.toFixed(4)}, ${Math.round(examplesDone / ((now - started) / 1000))} ex/s`);
      }
    },
  });
  publish({ rank, step: firstStep + result.steps, epoch: lastEpoch, loss: lastLoss, examples: 0, examplesPerSec: rate(), done: true });
  await nc.flush();
  log(`done: ${result.steps} steps, ${result.examples} examples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { steps: result.steps };
}

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
