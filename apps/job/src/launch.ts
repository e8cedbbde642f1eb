// Runs one local job end to end: NATS, data shards, aggregator(s), evaluator, trainers; then the
// final evaluation and checkpoint. The order matters: each actor asks the previous ones for its
// configuration (see docs/DESIGN.md), so we wait for each layer to answer before starting the next.
//
// Faults (docs/RELIABILITY.md): the launcher is the job's agent, like torchrun's. It checkpoints
// the job every --checkpoint-every (parameter shards with optimizer state and data cursors in ps;
// rank 0's replica with optimizer state and data position in mirrored) into <out>/checkpoints,
// restarts crashed or stalled actors (stalled = no heartbeat for --heartbeat-timeout) from the
// newest checkpoint, re-forms a mirrored group, restarts the broker it owns, and stops everything
// on SIGINT/SIGTERM after a last checkpoint.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NatsServer, connect, credentialsEnv, generateRoleCredentials, roleConnectOptions, natsAuthConfig, roleOfApp, type NatsConnection } from '@actorflow/bus';
import { latestCheckpoint, listCheckpoints, type Checkpoint } from '@actorflow/checkpoint';
import { JobCheckpointer } from './checkpointer.ts';
import { EarlyStopper } from './early-stop.ts';
import { evalReportCodec, heartbeatCodec, lossReportCodec, subjects, type EvalReport, type LossReport } from '@actorflow/protocol';
import { ScalarWriter, summarizeEval, summarizeLoss } from '@actorflow/tensorboard';
import { JOB_MAX_PAYLOAD, PsClient, type ShardStats } from '@actorflow/strategies';
import { ModelNotSavedError, workloadFor, writeMetricsJson, type JobFaults, type JobMetrics } from '@actorflow/workloads';
import { dataOptionFlags, type JobConfig } from '@actorflow/feed';
import type { JobPlan } from './flags.ts';
import { Progress } from './progress.ts';
import { ActorFailedError, Supervisor, type ActorExit, type ActorSpec, type ExitDecision } from './supervisor.ts';
import { freePort, watchCommands } from './watch.ts';
import { planReport, RemoteSpawner, resolveClusterJob } from './remote.ts';
import { DivergenceHandler, type DivergenceLog } from './rollback.ts';

/**
 * metrics.json: the final metrics and (Partial<Throughput>) the training speed measured from the
 * trainers' reports — the fields a by-hand job writes too (JobMetrics, libs/workloads) — always with an out/ folder.
 */
export interface JobResult extends JobMetrics {
  readonly out: string;
  /** What went wrong and was survived: restarts per actor, stalls, broker restarts, group re-formations. */
  readonly faults?: FaultLog;
  /** A --plan/--blueprint job: the planner's predicted step time and the measured one (src/remote.ts). */
  readonly plan?: Readonly<Record<string, unknown>>;
}

/** The by-hand job's fault fields (JobFaults, libs/workloads), and what only a launcher sees. */
export interface FaultLog extends JobFaults {
  /** --on-divergence: what happened when training diverged (src/rollback.ts). */
  readonly divergence?: DivergenceLog;
  /** Checkpoints not written because the state held NaN or ±Infinity (src/checkpointer.ts). */
  readonly checkpointsNonFinite?: number;
}

export class JobFailedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JobFailedError';
  }
}

/** SIGINT/SIGTERM stopped the job (after a last checkpoint when one could be taken). */
export class JobInterruptedError extends JobFailedError {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
    this.name = 'JobInterruptedError';
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
      if (err instanceof Error && (err.name === 'ActorFailedError' || err.name === 'JobInterruptedError')) throw err;
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

export interface LaunchOptions {
  /** Aborting it (SIGINT/SIGTERM in main.ts) stops the job after a last checkpoint. */
  readonly signal?: AbortSignal;
}

export async function launchJob(asked: JobPlan, root: string, log: (line: string) => void, opts: LaunchOptions = {}): Promise<JobResult> {
  const started = Date.now();
  // --plan / --blueprint: the ShardingPlan decides strategy, trainers and shards; actors run on node agents (src/remote.ts).
  const { job: plan, sharding, placement } = resolveClusterJob(asked, root);
  const out = resolve(root, plan.out);
  mkdirSync(out, { recursive: true });
  const ckptRoot = resolve(out, 'checkpoints');
  const restoreDir = resolve(out, 'restore');
  if (plan.resume === undefined) writeFileSync(resolve(out, 'plan.json'), `${JSON.stringify({ ...plan, natsUrl: undefined }, null, 2)}\n`);
  // What the model's actors do and what the launcher must know of it (libs/workloads).
  const workload = workloadFor(plan.model);
  const noParams = !workload.hasParameters({ model: plan.model }); // kNN: nothing to checkpoint, one aggregator
  const mirrored = plan.strategy === 'mirrored';
  const resumeFrom: Checkpoint | undefined = plan.resume !== undefined ? await latestCheckpoint(ckptRoot) : undefined;
  const resumedFrom = resumeFrom?.step;
  if (plan.resume !== undefined)
    log(
      resumeFrom !== undefined
        ? `resuming job ${plan.job} from its checkpoint of step ${resumeFrom.step} (${resumeFrom.dir})`
        : `no complete checkpoint in ${ckptRoot}: starting job ${plan.job} from the beginning`,
    );
  const faults = { restarts: {} as Record<string, number>, stalls: [] as string[], brokerRestarts: 0, groupReformations: 0, evaluatorGaveUp: false };
  let closing = false;

  // --- the broker: ours (a nats-server on a free port, restarted on the same port if it dies) or the user's.
  let server: NatsServer | undefined;
  let natsUrl = plan.natsUrl;
  // Our own broker gets one user per role with only the subjects that role needs (docs/SECURITY.md);
  // fresh passwords per run, handed to each child in its environment, never logged.
  const creds = natsUrl === undefined ? generateRoleCredentials(plan.job, { trainerRanks: plan.trainers }) : undefined; // one trainer user per rank
  const brokerConfig = creds !== undefined ? natsAuthConfig(plan.job, creds) : undefined;
  if (natsUrl === undefined) {
    server = await NatsServer.start({ dieWithParent: true, maxPayload: JOB_MAX_PAYLOAD, ...(brokerConfig !== undefined ? { config: brokerConfig } : {}) });
    natsUrl = server.url;
    log(`nats-server started at ${natsUrl} (pid ${server.pid})`);
  } else {
    log(`using NATS at ${natsUrl}`);
  }
  for (const line of watchCommands(natsUrl, plan.job)) log(line);
  const nc = await connect({ servers: natsUrl.split(',').map((u) => u.trim()), name: `job-${plan.job}`, ...(creds !== undefined ? roleConnectOptions('launcher', creds) : {}) });
  const heartbeatGraceMs = plan.heartbeatTimeoutS * 1000;
  const writeActors = (): void =>
    writeFileSync(resolve(out, 'actors.json'), `${JSON.stringify({ broker: server !== undefined ? { url: natsUrl, pid: server.pid } : { url: natsUrl }, actors: sup.list() }, null, 2)}\n`);

  const act = (name: string, app: string, role: ActorSpec['role'], args: string[]): ActorSpec =>
    actor(name, app, role, args, creds !== undefined ? credentialsEnv(roleOfApp(app), creds, name) : undefined);
  // --- what each actor is started with; restarts add --restore-* files from the newest checkpoint.
  const common = ['--job', plan.job];
  const dataShards = plan.dataShards;
  const aggregators = plan.strategy === 'ps' && !noParams ? plan.psShards : 1;
  let worldSize = plan.trainers;
  let generation = 0;
  const trainerGeneration = new Map<string, number>();
  const restoreArg = (flag: string, part: string): string[] => {
    const latest = ckpt.latest;
    if (latest === undefined || !latest.parts.includes(part)) return [];
    mkdirSync(restoreDir, { recursive: true });
    // A copy: pruning may remove the checkpoint directory while the actor starts.
    const file = resolve(restoreDir, part);
    writeFileSync(file, latest.read(part));
    return [flag, file];
  };
  const dataShardSpec = (i: number): ActorSpec =>
    act(`data-shard-${i}`, 'data-shard', 'service', [
      ...common,
      ...['--shard', `${i}`, '--of', `${dataShards}`, '--dataset', plan.dataset, '--split', plan.split, '--seed', `${plan.seed}`],
      ...['--epochs', `${plan.epochs}`, '--batch-size', `${plan.batchSize}`],
      ...dataOptionFlags(plan.data),
      // Mirrored reads are stateless (rank, epoch, step name a batch); ps shards resume their cursor.
      ...(!mirrored ? restoreArg('--restore-state', `data-${i}.json`) : []),
    ]);
  const aggregatorSpec = (i: number): ActorSpec =>
    act(`aggregator-${i}`, 'aggregator', 'service', [
      ...common,
      ...['--strategy', plan.strategy, '--ps-shard', `${i}`, '--ps-shards', `${aggregators}`, '--world-size', `${worldSize}`],
      ...['--data-shards', `${dataShards}`, '--model', plan.model, '--seed', `${plan.seed}`],
      ...plan.modelFlags,
      ...divergence.aggregatorFlags(),
      ...(mirrored ? (i === 0 ? restoreArg('--restore-trainer', 'trainer.bin') : []) : restoreArg('--restore-shard', `ps-${i}.bin`)),
    ]);
  const evaluatorSpec = (): ActorSpec =>
    act('evaluator', 'evaluator', 'service', [
      ...common,
      ...['--strategy', plan.strategy, '--ps-shards', `${aggregators}`, '--data-shards', `${dataShards}`, '--every', `${plan.evalEvery}`, '--out', out],
    ]);
  const snapshotSteps = plan.checkpointEvery.steps;
  const snapshotSeconds = plan.checkpointEvery.seconds;
  const trainerSpec = (r: number): ActorSpec => {
    trainerGeneration.set(`trainer-${r}`, generation);
    const firstStep = progress.rankSteps()[String(r)];
    return act(`trainer-${r}`, 'trainer', 'worker', [
      ...common,
      ...['--strategy', plan.strategy, '--rank', `${r}`, '--world-size', `${worldSize}`, '--ps-shards', `${aggregators}`, '--data-shards', `${dataShards}`],
      ...['--allreduce', plan.allreduce],
      ...(plan.backend !== undefined ? ['--backend', plan.backend] : []),
      ...(mirrored
        ? [
            ...['--generation', `${generation}`, '--collective-timeout', `${Math.max(10, plan.heartbeatTimeoutS * 2)}`],
            ...(snapshotSteps !== undefined ? ['--snapshot-every', `${snapshotSteps}`] : ['--snapshot-every', '1000000000']),
            ...(snapshotSeconds !== undefined ? ['--snapshot-seconds', `${snapshotSeconds}`] : []),
          ]
        : firstStep !== undefined && firstStep > 0
          ? ['--first-step', `${firstStep}`]
          : []),
    ]);
  };

  // --- restart policy (docs/RELIABILITY.md, "fault matrix").
  let reforming: Promise<void> | undefined;
  const onExit = async (exit: ActorExit): Promise<ExitDecision> => {
    if (closing || opts.signal?.aborted === true) return { action: 'ignore' }; // the job is stopping: no restarts
    const diverged = await divergence.onExit(exit); // a non-finite loss is never restarted blindly (src/rollback.ts)
    if (diverged !== undefined) return diverged;
    // Exit code 2 is a usage error (a bad flag, an unreadable file): deterministic, so never restarted.
    if (exit.code === 2 && !exit.stalled) return { action: 'fail' };
    const how = exit.stalled ? 'stalled (no heartbeat) and was killed' : exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    if (exit.stalled) faults.stalls.push(exit.name);
    const left = plan.maxRestarts - exit.restarts;
    const count = (): void => {
      faults.restarts[exit.name] = (faults.restarts[exit.name] ?? 0) + 1;
    };
    if (exit.name === 'evaluator' || exit.name === 'monitor') {
      // A sidecar: its death never fails training.
      if (left <= 0) {
        if (exit.name === 'evaluator') faults.evaluatorGaveUp = true;
        log(`warning: ${exit.name} ${how} and has used its ${plan.maxRestarts} restart(s); training goes on without it`);
        return { action: 'ignore' };
      }
      count();
      log(`warning: ${exit.name} ${how}; restarting it (${exit.restarts + 1}/${plan.maxRestarts}); training is not affected`);
      return { action: 'restart', args: (exit.name === 'evaluator' ? evaluatorSpec() : exit.spec).args };
    }
    if (exit.name.startsWith('trainer-') && mirrored) {
      if ((trainerGeneration.get(exit.name) ?? 0) < generation || reforming !== undefined) return { action: 'ignore' }; // part of a re-formation already under way
      reforming = reformGroup(exit, how).finally(() => {
        reforming = undefined;
      });
      await reforming;
      return { action: 'ignore' };
    }
    if (left <= 0) return { action: 'fail', why: `${how}, and has used its ${plan.maxRestarts} restart(s) (--max-restarts)` };
    count();
    if (exit.name.startsWith('trainer-')) {
      // ps trainers are stateless: a restarted one pulls fresh parameters and takes the next batches.
      log(`${exit.name} ${how}; restarting it (${exit.restarts + 1}/${plan.maxRestarts}); it rejoins the parameter servers`);
      return { action: 'restart', args: trainerSpec(Number(exit.name.slice('trainer-'.length))).args };
    }
    const latest = ckpt.latest;
    const from = latest !== undefined ? `from the checkpoint of step ${latest.step}` : 'from the start (no checkpoint yet)';
    if (exit.name.startsWith('data-shard-')) {
      log(`${exit.name} ${how}; restarting it ${mirrored ? '(its reads are stateless)' : `at its cursor ${from}`} (${exit.restarts + 1}/${plan.maxRestarts})`);
      return { action: 'restart', args: dataShardSpec(Number(exit.name.slice('data-shard-'.length))).args };
    }
    if (exit.name.startsWith('aggregator-')) {
      log(`${exit.name} ${how}; restarting it ${mirrored ? `with the replica ${from}` : `with its parameters and optimizer state ${from}`} (${exit.restarts + 1}/${plan.maxRestarts})`);
      return { action: 'restart', args: aggregatorSpec(Number(exit.name.slice('aggregator-'.length))).args };
    }
    return { action: 'fail', why: how };
  };

  /** Mirrored: a rank died or stalled. Stop the group, then start it again (same size, or smaller) from the last replica. */
  const reformGroup = async (exit: ActorExit, how: string): Promise<void> => {
    const used = faults.groupReformations;
    let next = worldSize;
    if (used >= plan.maxRestarts) {
      if (worldSize - 1 < plan.minTrainers) {
        sup.fail(
          new ActorFailedError(
            exit.name,
            exit.code,
            exit.signal,
            exit.lastLines,
            `${how}; the group has been re-formed ${used} time(s) (--max-restarts ${plan.maxRestarts}) and cannot shrink below --min-trainers ${plan.minTrainers}`,
          ),
        );
        return;
      }
      next = worldSize - 1;
    }
    faults.groupReformations++;
    generation++;
    const names = [...Array(worldSize).keys()].map((r) => `trainer-${r}`);
    await Promise.all(names.map((n) => sup.kill(n)));
    const retired = names.slice(next);
    progress.setWorldSize(next, ckpt.latest?.step ?? 0); // the step total and ETA follow a shrunk group
    const changed =
      next !== worldSize
        ? `; world size ${worldSize} → ${next}, global batch ${plan.batchSize * worldSize} → ${plan.batchSize * next} examples (each rank keeps --batch-size ${plan.batchSize}; the ranks resume at the same example of the epoch)`
        : '';
    worldSize = next;
    log(`${exit.name} ${how}: re-forming the mirrored group (generation ${generation}, ${worldSize} rank(s)) from the last replica rank 0 checkpointed${changed}`);
    for (let r = 0; r < worldSize; r++) {
      faults.restarts[`trainer-${r}`] = (faults.restarts[`trainer-${r}`] ?? 0) + 1;
      sup.start(trainerSpec(r));
    }
    // Only now: retiring earlier would leave only stopped workers, which reads as "all done".
    for (const n of retired) sup.retire(n);
  };

  // --on-divergence (src/rollback.ts): stop, or restart the model's actors from the last checkpoint with a lower lr.
  const modelActors = (): string[] => [
    ...[...Array(worldSize).keys()].map((r) => `trainer-${r}`),
    ...[...Array(aggregators).keys()].map((i) => `aggregator-${i}`),
    ...(mirrored ? [] : [...Array(dataShards).keys()].map((i) => `data-shard-${i}`)),
  ];
  const divergence = new DivergenceHandler(plan.divergence, {
    kill: (name) => sup.kill(name),
    start: (spec) => sup.start(spec),
    actors: () => ({
      kill: modelActors(),
      start: () => [...(mirrored ? [] : [...Array(dataShards).keys()].map(dataShardSpec)), ...[...Array(aggregators).keys()].map(aggregatorSpec), ...[...Array(worldSize).keys()].map(trainerSpec)],
    }),
    latestStep: () => ckpt.latest?.step,
    // The newest finite checkpoint kept is restored (rollback.ts checks each, newest first).
    checkpoints: async () => (await listCheckpoints(ckptRoot)).flatMap((l) => (l.checkpoint !== undefined ? [l.checkpoint] : [])),
    use: (cp) => void (ckpt.latest = cp),
    // Mirrored: the replica rank 0 sent since the last tick is saved before choosing (ps shards hold the diverged run's state: not saved).
    ...(mirrored ? { flush: async () => void (await ckpt.take('before the rollback')) } : {}),
    rewind: (step) => ckpt.rewind(step),
    prepare: () => void (mirrored && generation++),
    log,
  });

  const remote =
    placement !== undefined
      ? await RemoteSpawner.open(nc, { job: plan.job, placement, log, ...(plan.resume !== undefined ? { missingAgents: 'move' as const } : {}) }).catch(
          async (err: Error) => (await nc.close(), Promise.reject(new JobFailedError(err.message))),
        )
      : undefined;
  const sup = new Supervisor({
    root,
    env: { NATS_URL: natsUrl, ACTORFLOW_RETRY_DEADLINE_S: `${Math.max(120, plan.heartbeatTimeoutS * 4)}`, ACTORFLOW_ATTEMPT_TIMEOUT_S: '10' },
    logDir: resolve(out, 'logs'),
    onLine: plan.verbose ? (name, line) => log(`[${name}] ${line}`) : undefined,
    onExit,
    heartbeatTimeoutMs: plan.heartbeatTimeoutS * 1000,
    log,
    onStart: () => writeActors(),
    ...(remote !== undefined ? { spawner: remote } : {}),
  });

  // --- liveness: every actor's heartbeat; no verdicts while we cannot hear anyone (broker away).
  const hbSub = nc.subscribe(`${plan.job}.hb.*`, {
    callback: (_e, m) => {
      try {
        const hb = heartbeatCodec.decode(m.data);
        if (hb.job === plan.job && hb.actor !== undefined) sup.seen(hb.actor);
      } catch {
        /* not a heartbeat: ignore */
      }
    },
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') sup.pauseLiveness(3_600_000);
      else if (s.type === 'reconnect') sup.pauseLiveness(heartbeatGraceMs);
    }
  })().catch(() => undefined);
  const watchBroker = async (): Promise<void> => {
    while (server !== undefined && !closing) {
      const ex = await server.exited;
      if (closing) return;
      const port = server.port;
      faults.brokerRestarts++;
      if (faults.brokerRestarts > plan.maxRestarts) {
        sup.fail(new ActorFailedError('nats-server', ex.code, ex.signal, [], `died ${faults.brokerRestarts} times (--max-restarts ${plan.maxRestarts})`));
        return;
      }
      sup.pauseLiveness(3_600_000);
      log(`nats-server (pid ${server.pid}) died (${ex.signal ?? `code ${ex.code}`}): restarting it on port ${port} (${faults.brokerRestarts}/${plan.maxRestarts}); actors reconnect and retry`);
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          server = await NatsServer.start({ port, dieWithParent: true, maxPayload: JOB_MAX_PAYLOAD, ...(brokerConfig !== undefined ? { config: brokerConfig } : {}) });
          break;
        } catch (err) {
          if (Date.now() > deadline) {
            sup.fail(new ActorFailedError('nats-server', ex.code, ex.signal, [], `could not be restarted on port ${port}: ${(err as Error).message}`));
            return;
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      sup.pauseLiveness(heartbeatGraceMs);
      log(`nats-server is back at ${server.url} (pid ${server.pid})`);
      writeActors();
    }
  };
  void watchBroker();

  if (plan.monitor === true) {
    const port = await freePort();
    sup.start(act('monitor', 'monitor', 'service', ['--job', plan.job, '--port', `${port}`, '--no-tty']));
    log(`monitor: http://127.0.0.1:${port}/`);
  }
  const progress = new Progress(plan, log);
  const failed = sup.failed();
  failed.catch(() => undefined); // observed below via races; avoid an unhandled rejection
  const interrupted = new Promise<never>((_, reject) => {
    const onAbort = (): void => reject(new JobInterruptedError(String(opts.signal?.reason ?? 'a signal')));
    if (opts.signal?.aborted === true) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  interrupted.catch(() => undefined);
  const stopped = Promise.race([failed, interrupted]);
  stopped.catch(() => undefined);
  // TensorBoard scalars (`tensorboard --logdir out/<job>/tensorboard`): loss and ex/s per rank, eval metrics.
  const board = new ScalarWriter(resolve(out, 'tensorboard'));
  const lossSub = nc.subscribe(subjects.loss, {
    callback: (_e, m) => {
      let r: LossReport;
      try {
        r = lossReportCodec.decode(m.data);
      } catch {
        return; // not a loss report (train.loss is public: anyone may publish there)
      }
      progress.onLoss(r);
      if (r.job === plan.job && r.done !== true) summarizeLoss(board, r);
    },
  });
  const evalSub = nc.subscribe(subjects.eval, {
    callback: (_e, m) => {
      let r: EvalReport;
      try {
        r = evalReportCodec.decode(m.data);
      } catch {
        return; // not an eval report
      }
      progress.onEval(r);
      if (r.job === plan.job) summarizeEval(board, r);
    },
  });
  if (resumeFrom !== undefined && typeof resumeFrom.meta.trainerSteps === 'object' && resumeFrom.meta.trainerSteps !== null && !mirrored)
    progress.setResumedSteps(resumeFrom.meta.trainerSteps as Record<string, number>);

  // --- checkpoints (src/checkpointer.ts): on a timer while training, and at the end.
  const ckpt = new JobCheckpointer({
    nc,
    job: plan.job,
    strategy: plan.strategy,
    model: plan.model,
    root: ckptRoot,
    keep: plan.keepCheckpoints,
    every: plan.checkpointEvery,
    psShards: aggregators,
    dataShards,
    progress,
    worldSize: () => worldSize,
    log,
    ...(resumeFrom !== undefined ? { latest: resumeFrom } : {}),
  });
  let training = false;
  // --validation / --early-stop (src/early-stop.ts): the validation metric each epoch, the best epoch kept.
  let early: EarlyStopper | undefined;

  const resultOf = async (): Promise<JobResult> => {
    log(
      `job ${plan.job}: ${plan.strategy}, model ${plan.model}, ${plan.trainers} trainer(s), ${dataShards} data shard(s)` +
        (plan.strategy === 'ps' && !noParams ? `, ${plan.psShards} parameter-server shard(s)` : '') +
        `; logs in ${out}/logs` +
        (noParams ? '' : `; checkpoints ${describeCadence(plan.checkpointEvery)} in ${ckptRoot}`),
    );
    for (let i = 0; i < dataShards; i++) sup.start(dataShardSpec(i));
    const info = (await waitForAnswer(nc, subjects.dataInfo(plan.job), 'the data shards', 600_000, stopped)) as Record<string, unknown>;
    progress.setDataInfo(info);
    log(
      info.kind === 'images'
        ? `data: ${String(info.trainRows)} train / ${String(info.testRows)} test images`
        : `data: ${String(info.numUsers)} users, ${String(info.numItems)} items, ${String(info.trainRows)} train / ${String(info.testRows)} test ratings`,
    );
    for (let i = 0; i < aggregators; i++) sup.start(aggregatorSpec(i));
    const config = (await waitForAnswer(nc, subjects.ctl(plan.job, 'config'), 'the aggregator', 120_000, stopped)) as JobConfig;
    divergence.setConfig(config);
    if (plan.data.validation !== undefined) {
      early = new EarlyStopper({
        nc,
        job: plan.job,
        strategy: plan.strategy,
        seed: plan.seed,
        dataset: { source: plan.dataset, split: plan.split, seed: plan.seed, ...plan.data },
        log,
        ...(plan.earlyStop !== undefined ? { patience: plan.earlyStop } : {}),
      });
      await early.start(config).catch((err: unknown) => Promise.reject(new JobFailedError((err as Error).message)));
    }
    // Progress counts steps over the model's examples: rating rows, users or items, or images.
    const kind = workload.exampleKind(config);
    if (kind === 'user-rows' || kind === 'item-rows') progress.setExamples(kind === 'user-rows' ? num(info.trainUsers) : num(info.trainItems));
    // A workload that plans its steps (kNN: similarity blocks) gives the total.
    const planned = workload.plannedSteps(config, plan.strategy, plan.trainers);
    if (planned !== undefined) progress.setTotalSteps(planned);
    sup.start(evaluatorSpec());
    training = true;
    if (!noParams) ckpt.start();
    for (let r = 0; r < plan.trainers; r++) sup.start(trainerSpec(r));
    await Promise.race([sup.waitForWorkers(), stopped, ...(early !== undefined ? [early.stopped] : [])]);
    training = false;
    progress.finish();
    if (!noParams) {
      await ckpt.stop();
      await ckpt.take('final');
    }
    log('trainers finished; final evaluation…');
    const evalReport = faults.evaluatorGaveUp
      ? {}
      : ((await waitForAnswer(nc, subjects.evalNow(plan.job), 'the evaluator', 300_000, stopped, { final: true })) as {
          step?: number;
          metrics?: Record<string, number>;
        });
    if (faults.evaluatorGaveUp) log('warning: no final evaluation (the evaluator failed more than --max-restarts times); the model is saved');
    // The trained model: every parameter shard's rows merged into one file, with its configuration
    // and the dataset it was trained on (so `recommend` can map ids and exclude seen items).
    let checkpoint: Record<string, string>;
    try {
      const ratingRange = Array.isArray(info.ratingRange) && info.ratingRange.length === 2 ? { ratingRange: [Number(info.ratingRange[0]), Number(info.ratingRange[1])] as const } : {};
      const saved = divergence.config(config); // with the learning rate lowered by rollbacks (src/rollback.ts)
      checkpoint = await workload.saveModel(nc, saved, resolve(out, 'model'), { dataset: { source: plan.dataset, split: plan.split, seed: plan.seed, ...plan.data }, mirrored, ...ratingRange });
    } catch (err) {
      // Never a corrupted model: a NaN/Inf anywhere means training went wrong.
      throw err instanceof ModelNotSavedError ? new JobFailedError(err.message) : err;
    }
    // The best epoch's parameters replace the saved ones and give the test metrics.
    const kept = early !== undefined ? await early.finish(resolve(out, 'model'), (evalReport as { metrics?: Record<string, number> }).metrics ?? {}, progress.maxStep) : undefined;
    // Per parameter shard: pushes applied, dropped, rejected by reason and by sender.
    let psShardStats: ShardStats[] | undefined;
    if (plan.strategy === 'ps' && !noParams) psShardStats = await new PsClient(nc, { job: plan.job, shards: config.psShards, retry: { deadlineMs: 10_000 } }).stats().catch(() => undefined);
    const throughput = progress.throughput();
    const faultLog: FaultLog = {
      ...faults,
      ...(mirrored ? { worldSize } : {}),
      checkpoints: ckpt.written,
      ...(ckpt.nonFinite > 0 ? { checkpointsNonFinite: ckpt.nonFinite } : {}),
      divergence: divergence.log,
      ...(resumedFrom !== undefined ? { resumedFromStep: resumedFrom } : {}),
    };
    const result: JobResult = {
      job: plan.job,
      strategy: plan.strategy,
      model: plan.model,
      metrics: kept?.metrics ?? (evalReport as { metrics?: Record<string, number> }).metrics ?? {},
      steps: Math.max((evalReport as { step?: number }).step ?? 0, progress.maxStep),
      seconds: (Date.now() - started) / 1000,
      ...(typeof info.noiseFloorRmse === 'number' ? { noiseFloorRmse: info.noiseFloorRmse } : {}),
      out,
      ...throughput,
      faults: faultLog,
      ...(sharding !== undefined ? { plan: planReport(sharding, progress.rankSteps(), throughput?.trainSeconds) } : {}),
    };
    // The one metrics.json writer, shared with a by-hand job's aggregator --out (libs/workloads).
    writeMetricsJson(out, {
      ...result,
      ...(kept !== undefined ? { bestEpoch: kept.validation.bestEpoch, validation: kept.validation } : {}),
      checkpoint,
      ...(ckpt.latest !== undefined ? { lastCheckpoint: ckpt.latest.dir } : {}),
      ...(psShardStats !== undefined ? { psShards: psShardStats } : {}),
    });
    return result;
  };

  try {
    return await resultOf();
  } catch (err) {
    if (err instanceof JobInterruptedError && training && !noParams) {
      // A last checkpoint, if the actors still answer within a few seconds; then everything stops.
      log(`${err.signal}: taking a last checkpoint, then stopping every actor …`);
      await Promise.race([(async () => (await ckpt.stop(), await ckpt.take('interrupted')))(), new Promise((r) => setTimeout(r, 10_000))]);
    }
    throw err instanceof JobFailedError ? err : new JobFailedError((err as Error).message, { cause: err });
  } finally {
    closing = true;
    ckpt.quiet();
    early?.close();
    await ckpt.stop();
    lossSub.unsubscribe();
    evalSub.unsubscribe();
    hbSub.unsubscribe();
    board.close();
    await sup.stopAll();
    remote?.close();
    writeActors();
    await nc.close();
    await server?.stop();
  }
}

function describeCadence(c: JobPlan['checkpointEvery']): string {
  return [c.steps !== undefined ? `every ${c.steps} steps` : undefined, c.seconds !== undefined ? `every ${c.seconds} s` : undefined].filter((x) => x !== undefined).join(' and ');
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function actor(name: string, app: string, role: ActorSpec['role'], args: string[], env?: Readonly<Record<string, string>>): ActorSpec {
  return { name, entry: `apps/${app}/main.ts`, role, args, ...(env !== undefined ? { env } : {}) };
}
