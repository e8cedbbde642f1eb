// How a job started by hand (no launcher) ends. The config owner (aggregator shard 0) watches the
// trainers' reports on train.loss; when every trainer it has heard from reported done (and, for a
// mirrored group, the whole group), it asks the evaluator for the final score, writes what the
// launcher writes (the model, metrics.json, the evaluation history) when it has --out, and
// announces the end on <job>.ctl.stop. The data shards, the evaluator and the other parameter
// shards exit on that message unless --keep-serving. Under a launcher (ACTORFLOW_SUPERVISED=1)
// none of this runs: the launcher ends the job and stops its actors.
import { join } from 'node:path';
import { listActorServices, requestWithRetry, type ActorConnection, type NatsConnection, type Subscription } from '@actorflow/bus';
import { DataClient, type DatasetInfo } from '@actorflow/feed';
import { evalNowRequestCodec, evalReportCodec, lossReportCodec, stopCodec, subjects, type EvalReport, type JobConfig, type LossReport } from '@actorflow/protocol';
import { PsClient, type ShardStats } from '@actorflow/strategies';
import { appendEvalHistory, writeMetricsJson } from './save.ts';
import type { Workload } from './workload.ts';

/** A launcher supervises this process: it ends the job, not the actors. */
export function supervised(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.ACTORFLOW_SUPERVISED === '1';
}

export interface TrainersDone {
  /** The strategy the trainers reported (a by-hand aggregator serves both, whatever its --strategy). */
  readonly strategy: string;
  /** The highest step reported (ps: counted over all trainers). */
  readonly steps: number;
  readonly ranks: readonly number[];
}

/**
 * Resolves once every trainer rank heard on train.loss for `job` has reported done — at least
 * `minRanks` of them (a mirrored group: its world size). A rank is known from its first report,
 * so a trainer still running keeps the job open.
 */
export function trainersDone(
  nc: NatsConnection,
  job: string,
  o: { readonly minRanks: (strategy: string) => number; readonly settleMs?: number },
): { readonly done: Promise<TrainersDone>; stop(): void } {
  const seen = new Set<number>();
  const finished = new Set<number>();
  let steps = 0;
  let strategy = 'ps';
  let resolve: (d: TrainersDone) => void = () => undefined;
  const done = new Promise<TrainersDone>((r) => (resolve = r));
  let timer: NodeJS.Timeout | undefined;
  const complete = (): boolean => finished.size >= Math.max(1, o.minRanks(strategy)) && [...seen].every((r) => finished.has(r));
  const sub = onJobLoss(nc, job, (r) => {
    seen.add(r.rank);
    strategy = r.strategy;
    steps = Math.max(steps, r.step);
    if (r.done === true) finished.add(r.rank);
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    // A moment's quiet first: another rank's last reports may still be on their way.
    if (complete())
      timer = setTimeout(() => {
        if (!complete()) return;
        sub.unsubscribe();
        resolve({ strategy, steps, ranks: [...finished].sort((a, b) => a - b) });
      }, o.settleMs ?? 1000);
  });
  return {
    done,
    stop: () => {
      if (timer !== undefined) clearTimeout(timer);
      sub.unsubscribe();
    },
  };
}

/** What metrics.json records of training speed (issue 10): measured from the trainers' train.loss reports. */
export interface Throughput {
  /** First step report to last step report, over every trainer, plus one mean step (the first step's own time). */
  readonly trainSeconds: number;
  /** Training examples of every trainer over trainSeconds. */
  readonly examplesPerSecond: number;
  readonly backend?: string;
  /** Mean per-step split, milliseconds and shares of the step, when the trainers report it. */
  readonly stepTiming?: { readonly computeMs: number; readonly serdeMs: number; readonly waitMs: number; readonly waitAndSerdeShare: number };
}

/** The step-report fields the throughput is measured from (a LossReport, or the launcher's parsed JSON of one). */
export interface SpeedSample {
  readonly ts?: unknown;
  readonly examples?: unknown;
  readonly done?: unknown;
  readonly backend?: unknown;
  readonly timing?: unknown;
}

const finiteNum = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/**
 * Training speed over a job, from its trainers' step reports: the one meter behind metrics.json's
 * throughput fields, for the launcher (apps/job Progress) and a by-hand job's config owner alike.
 */
export class ThroughputMeter {
  readonly #s = { first: Number.POSITIVE_INFINITY, last: Number.NEGATIVE_INFINITY, reports: 0, examples: 0, computeMs: 0, serdeMs: 0, waitMs: 0, timed: 0 };
  #backend: string | undefined;

  add(msg: SpeedSample): void {
    if (typeof msg.backend === 'string') this.#backend = msg.backend;
    const ts = finiteNum(msg.ts);
    const examples = finiteNum(msg.examples);
    if (msg.done === true || ts === undefined || examples === undefined || examples <= 0) return;
    const s = this.#s;
    s.first = Math.min(s.first, ts);
    s.last = Math.max(s.last, ts);
    s.reports++;
    s.examples += examples;
    const timing = typeof msg.timing === 'object' && msg.timing !== null ? (msg.timing as Record<string, unknown>) : undefined;
    if (timing !== undefined) {
      const c = finiteNum(timing.computeMs);
      const z = finiteNum(timing.serdeMs);
      const w = finiteNum(timing.waitMs);
      if (c !== undefined && z !== undefined && w !== undefined) {
        s.computeMs += c;
        s.serdeMs += z;
        s.waitMs += w;
        s.timed++;
      }
    }
  }

  get backend(): string | undefined {
    return this.#backend;
  }

  /** Training speed over the job so far; undefined before two step reports. */
  throughput(): Throughput | undefined {
    const s = this.#s;
    if (s.reports < 2 || !(s.last > s.first)) return undefined;
    const span = (s.last - s.first) / 1000;
    // The span misses the first step of each rank: add the mean time between reports once.
    const trainSeconds = span + span / (s.reports - 1);
    const t = s.timed > 0 ? { computeMs: s.computeMs / s.timed, serdeMs: s.serdeMs / s.timed, waitMs: s.waitMs / s.timed } : undefined;
    const total = t !== undefined ? t.computeMs + t.serdeMs + t.waitMs : 0;
    return {
      trainSeconds,
      examplesPerSecond: s.examples / trainSeconds,
      ...(this.#backend !== undefined ? { backend: this.#backend } : {}),
      ...(t !== undefined ? { stepTiming: { ...t, waitAndSerdeShare: total > 0 ? (t.serdeMs + t.waitMs) / total : 0 } } : {}),
    };
  }
}

/** `42s`, `3m05s`, `1h02m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * The planned step total of a job, as the launcher counts it: pushes over every trainer in ps,
 * global steps per rank in mirrored (each rank takes --batch-size of a worldSize × batch step);
 * the workload's own plan when it has one (kNN: similarity blocks). Undefined when the data
 * shards' info does not tell the examples per epoch.
 */
export function plannedJobSteps(workload: Workload, config: JobConfig, strategy: string, worldSize: number, info: DatasetInfo): number | undefined {
  const planned = workload.plannedSteps(config, strategy, worldSize);
  if (planned !== undefined) return planned;
  const kind = workload.exampleKind(config);
  const rows = kind === 'user-rows' ? info.trainUsers : kind === 'item-rows' ? info.trainItems : info.trainRows;
  if (rows === undefined || !(info.batchSize > 0) || !(info.epochs > 0)) return undefined;
  const perStep = strategy === 'mirrored' ? info.batchSize * worldSize : info.batchSize;
  return Math.max(1, Math.ceil(rows / perStep)) * info.epochs;
}

/**
 * A by-hand job's progress, as the launcher's progress line shows it (apps/job): the job's step
 * out of its planned total, examples/s over its ranks, and an ETA at the step rate seen so far.
 * Fed with the job's train.loss reports (every rank's, so each trainer sees the whole job).
 */
export class JobProgress {
  readonly #strategy: string;
  #total: number | undefined;
  readonly #now: () => number;
  readonly #ranks = new Map<number, { step: number; epoch: number; loss: number; examplesPerSec: number }>();
  /** Where the ETA's rate is measured from (restarted when a mirrored group changes size). */
  #from: { t: number; steps: number } | undefined;

  constructor(o: { readonly strategy: string; readonly totalSteps: number | undefined; readonly now?: () => number }) {
    this.#strategy = o.strategy;
    this.#total = o.totalSteps;
    this.#now = o.now ?? Date.now;
  }

  get totalSteps(): number | undefined {
    return this.#total;
  }

  /** A new planned total (the launcher learns it from the data shards, or a mirrored group shrank). */
  setTotalSteps(total: number | undefined): void {
    this.#total = total;
  }

  onLoss(r: Pick<LossReport, 'rank' | 'step' | 'epoch' | 'loss' | 'examplesPerSec'>): void {
    this.#ranks.set(r.rank, { step: r.step, epoch: r.epoch, loss: r.loss, examplesPerSec: r.examplesPerSec });
    this.#from ??= { t: this.#now(), steps: this.stepsDone };
  }

  /** Steps done: summed over the trainers in ps (pushes), the furthest rank's in mirrored. */
  get stepsDone(): number {
    return this.#strategy === 'ps' ? this.#sumSteps() : this.maxStep;
  }

  /** The furthest step any rank reported. */
  get maxStep(): number {
    let n = 0;
    for (const r of this.#ranks.values()) n = Math.max(n, r.step);
    return n;
  }

  #sumSteps(): number {
    let n = 0;
    for (const r of this.#ranks.values()) n += r.step;
    return n;
  }

  /** The last step each rank reported (a restarted ps trainer continues its count from here). */
  rankSteps(): Record<string, number> {
    return Object.fromEntries([...this.#ranks.entries()].map(([rank, r]) => [String(rank), r.step]));
  }

  /** A resumed job: each rank starts from the step it had reached (what is left counts as to do). */
  setRankSteps(byRank: Readonly<Record<string, number>>): void {
    for (const [rank, step] of Object.entries(byRank)) this.#ranks.set(Number(rank), { step, epoch: 0, loss: Number.NaN, examplesPerSec: 0 });
  }

  /** Forgets ranks `n` and above (a mirrored group re-formed with fewer ranks). */
  keepRanks(n: number): void {
    for (const rank of [...this.#ranks.keys()]) if (rank >= n) this.#ranks.delete(rank);
  }

  /** A mirrored group went back to the checkpoint of step `step`: the kept ranks redo what followed, at a new rate. */
  rewindTo(step: number): void {
    for (const r of this.#ranks.values()) r.step = Math.min(r.step, step);
    this.#from = undefined;
  }

  /** Seconds left at the rate seen so far; undefined before a second of it, without a total, or once reached. */
  etaSeconds(now = this.#now()): number | undefined {
    const from = this.#from;
    const steps = this.stepsDone;
    if (from === undefined || this.#total === undefined || now - from.t < 1000 || steps <= from.steps || steps >= this.#total) return undefined;
    return (this.#total - steps) / ((steps - from.steps) / ((now - from.t) / 1000));
  }

  /** How many ranks have reported. */
  get ranks(): number {
    return this.#ranks.size;
  }

  /** `step 120/300 (40 %) epoch 2 loss 0.8123 5400 ex/s over 2 rank(s) | ETA 12s`; `extra` goes before the ETA. */
  line(extra = '', now = this.#now()): string {
    const ranks = [...this.#ranks.values()];
    const steps = this.stepsDone;
    const total = this.#total;
    const pct = total !== undefined ? ` (${Math.min(100, (100 * steps) / total).toFixed(0)} %)` : '';
    // A resumed rank has no loss until its first report: average the ranks that have one.
    const losses = ranks.map((r) => r.loss).filter((l) => !Number.isNaN(l));
    const loss = losses.length > 0 ? losses.reduce((s, l) => s + l, 0) / losses.length : Number.NaN;
    const rate = ranks.reduce((s, r) => s + r.examplesPerSec, 0);
    const epoch = ranks.length > 0 ? Math.max(...ranks.map((r) => r.epoch)) + 1 : 1;
    const eta = this.etaSeconds(now);
    return (
      `step ${steps}${total !== undefined ? `/${total}` : ''}${pct} epoch ${epoch} loss ${loss.toFixed(4)} ${Math.round(rate)} ex/s over ${ranks.length} rank(s)` +
      `${extra}${eta !== undefined ? ` | ETA ${formatDuration(eta)}` : ''}`
    );
  }
}

/**
 * A by-hand trainer's view of its job (apps/trainer, no launcher): every `intervalMs` one line of
 * the job's step / planned total, examples/s and ETA, from the job's train.loss reports.
 */
export function watchJobProgress(
  nc: NatsConnection,
  o: { readonly job: string; readonly strategy: string; readonly totalSteps: number | undefined; readonly log: (line: string) => void; readonly intervalMs?: number },
): { readonly progress: JobProgress; stop(): void } {
  const progress = new JobProgress({ strategy: o.strategy, totalSteps: o.totalSteps });
  let last = Date.now();
  const sub = onJobLoss(nc, o.job, (r) => {
    if (r.done === true) return;
    progress.onLoss(r);
    const now = Date.now();
    if (now - last >= (o.intervalMs ?? 2000)) {
      last = now;
      o.log(`job ${o.job}: ${progress.line()}`);
    }
  });
  return {
    progress,
    stop: () => {
      sub.unsubscribe();
      if (progress.stepsDone > 0) o.log(`job ${o.job}: ${progress.line()}`);
    },
  };
}

/**
 * What went wrong and was survived, as metrics.json `faults` records it — the launcher's fields
 * (apps/job FaultLog extends this). A by-hand job has no supervisor: no restarts, stalls or
 * checkpoints of its own; it counts the broker reconnections its config owner saw.
 */
export interface JobFaults {
  readonly restarts: Record<string, number>;
  readonly stalls: string[];
  readonly brokerRestarts: number;
  readonly groupReformations: number;
  readonly worldSize?: number;
  readonly resumedFromStep?: number;
  readonly checkpoints: number;
  readonly evaluatorGaveUp?: boolean;
}

/** metrics.json's fields common to a launched and a by-hand job (apps/job JobResult extends this). */
export interface JobMetrics extends Partial<Throughput> {
  readonly job: string;
  readonly strategy: string;
  readonly model: string;
  readonly metrics: Readonly<Record<string, number>>;
  readonly steps: number;
  readonly seconds: number;
  readonly noiseFloorRmse?: number;
  readonly out?: string;
  readonly faults?: JobFaults;
}

export interface FinishOptions {
  readonly nc: NatsConnection;
  readonly workload: Workload;
  readonly config: JobConfig;
  /** Where the model, metrics.json and eval files go (none: nothing is written). */
  readonly out?: string;
  /** Recorded in model/config.json so `recommend` loads the same data. */
  readonly dataset: Readonly<Record<string, unknown>>;
  readonly started: number;
  readonly log: (line: string) => void;
  /** How long to wait for an evaluator's final score (default 120 s; an absent evaluator is a warning). */
  readonly evalDeadlineMs?: number;
}

/** The metrics.json of a by-hand job: the launcher's fields (JobMetrics), the saved files and the ps shards' counters. */
export interface ByHandResult extends JobMetrics {
  readonly faults: JobFaults;
  readonly checkpoint?: Record<string, string>;
  readonly psShards?: ShardStats[];
  readonly byHand: true;
}

/**
 * The aggregator's end of a by-hand job: waits for the trainers, takes the final evaluation,
 * saves (with `out`), announces the end on <job>.ctl.stop. Returns metrics.json's content.
 */
export async function finishByHand(o: FinishOptions): Promise<ByHandResult> {
  const { nc, config, log } = o;
  const job = config.job;
  // Every evaluation of the job, into out/eval.jsonl and eval.csv as the launcher's evaluator writes them.
  const evalSub =
    o.out !== undefined
      ? nc.subscribe(subjects.eval, {
          callback: (_e, m) => {
            try {
              const r = evalReportCodec.decode(m.data);
              if (r.job === job) appendEvalHistory(o.out as string, r);
            } catch {
              /* not an eval report */
            }
          },
        })
      : undefined;
  // The job's training speed (metrics.json's throughput fields), from the same reports the launcher measures.
  const meter = new ThroughputMeter();
  const speedSub = nc.subscribe(subjects.loss, {
    callback: (_e, m) => {
      try {
        const r = lossReportCodec.decode(m.data);
        if (r.job === job) meter.add(r);
      } catch {
        /* not a loss report */
      }
    },
  });
  // Broker restarts survived: the config owner's reconnections (a by-hand job has no supervisor to count restarts).
  let brokerRestarts = 0;
  void (async () => {
    for await (const st of nc.status()) if (st.type === 'reconnect') brokerRestarts++;
  })().catch(() => undefined);
  // A mirrored group, and kNN's ranks (each computes its share of the blocks), are the whole world; ps trainers come and go.
  const whole = !o.workload.hasParameters(config);
  const watch = trainersDone(nc, job, { minRanks: (strategy) => (strategy === 'mirrored' || whole ? config.worldSize : 1) });
  const done = await watch.done;
  speedSub.unsubscribe();
  log(`job ${job}: every trainer is done (rank(s) ${done.ranks.join(', ')}, step ${done.steps}); final evaluation …`);
  let report: EvalReport | undefined;
  let evaluatorGaveUp = false;
  const evaluators = (await listActorServices(nc, { job, timeoutMs: 2000 }).catch(() => [])).filter((x) => x.metadata?.role === 'evaluator');
  if (evaluators.length === 0) {
    evaluatorGaveUp = true;
    log(`warning: no evaluator of job ${job} is running: no final evaluation (start one with \`npx nx serve evaluator -- --job ${job}\`)`);
  } else
    try {
      report = evalReportCodec.decode(
        await requestWithRetry(nc, subjects.evalNow(job), evalNowRequestCodec.encode({ final: true }), { deadlineMs: o.evalDeadlineMs ?? 120_000, attemptTimeoutMs: 110_000 }),
      );
    } catch (err) {
      log(`warning: no final evaluation (${(err as Error).message}); start an evaluator (\`npx nx serve evaluator -- --job ${job}\`) to get one`);
      evaluatorGaveUp = true;
    }
  await nc.flush();
  evalSub?.unsubscribe();
  let info: DatasetInfo | undefined;
  try {
    info = await new DataClient(nc, { job, shards: 1 }).waitForInfo(5_000);
  } catch {
    /* the data shards are gone: no noise floor or rating range */
  }
  let checkpoint: Record<string, string> | undefined;
  if (o.out !== undefined) {
    checkpoint = await o.workload.saveModel(nc, config, join(o.out, 'model'), {
      dataset: o.dataset,
      mirrored: done.strategy === 'mirrored',
      ...(info?.ratingRange !== undefined ? { ratingRange: info.ratingRange } : {}),
    });
  }
  // Per parameter shard: pushes applied, dropped, rejected by reason and by sender (as the launcher records).
  const psShards = done.strategy === 'ps' && !whole ? await new PsClient(nc, { job, shards: config.psShards, retry: { deadlineMs: 10_000 } }).stats().catch(() => undefined) : undefined;
  const faults: JobFaults = {
    restarts: {},
    stalls: [],
    brokerRestarts,
    groupReformations: 0,
    ...(done.strategy === 'mirrored' ? { worldSize: done.ranks.length } : {}),
    checkpoints: 0,
    evaluatorGaveUp,
  };
  const result: ByHandResult = {
    job,
    strategy: done.strategy,
    model: config.model,
    metrics: report?.metrics ?? {},
    steps: Math.max(report?.step ?? 0, done.steps),
    seconds: (Date.now() - o.started) / 1000,
    ...(typeof info?.noiseFloorRmse === 'number' ? { noiseFloorRmse: info.noiseFloorRmse } : {}),
    ...(o.out !== undefined ? { out: o.out } : {}),
    ...meter.throughput(),
    faults,
    ...(checkpoint !== undefined ? { checkpoint } : {}),
    ...(psShards !== undefined ? { psShards } : {}),
    byHand: true,
  };
  if (o.out !== undefined) log(`model, metrics.json and the evaluation history written to ${o.out} (${writeMetricsJson(o.out, result)})`);
  announceEnd(nc, job, 'done');
  await nc.flush();
  return result;
}

/** Tells the job's actors it has ended (<job>.ctl.stop). */
export function announceEnd(nc: NatsConnection, job: string, reason: string): void {
  nc.publish(subjects.ctl(job, 'stop'), stopCodec.encode({ job, reason }));
}

/**
 * Calls `onEnd` (once) when the job's end is announced on <job>.ctl.stop. Nothing happens under a
 * launcher or with `keepServing`: then the actor serves until it is stopped.
 */
export function onJobEnd(nc: NatsConnection, job: string, onEnd: (reason: string) => void, o: { readonly keepServing?: boolean; readonly env?: NodeJS.ProcessEnv } = {}): { stop(): void } {
  if (o.keepServing === true || supervised(o.env)) return { stop: () => undefined };
  const sub = nc.subscribe(subjects.ctl(job, 'stop'), {
    callback: (_e, m) => {
      try {
        const s = stopCodec.decode(m.data);
        if (s.job !== job) return;
        sub.unsubscribe();
        onEnd(s.reason);
      } catch {
        /* not a stop message */
      }
    },
  });
  return { stop: () => sub.unsubscribe() };
}

/** Ends an actor process: its cleanup, the connection drained, a nats-server it started stopped, exit 0. */
export async function exitActor(conn: ActorConnection, cleanup: () => void = () => undefined): Promise<never> {
  try {
    cleanup();
    await conn.nc.drain().catch(() => conn.nc.close());
    await conn.server?.stop();
  } finally {
    process.exit(0);
  }
}

/** Calls `f` with every valid loss report of `job` on train.loss (anything else there is ignored). */
function onJobLoss(nc: NatsConnection, job: string, f: (r: LossReport) => void): Subscription {
  return nc.subscribe(subjects.loss, {
    callback: (_e, m) => {
      let r: LossReport;
      try {
        r = lossReportCodec.decode(m.data);
      } catch {
        return; // not a loss report
      }
      if (r.job === job) f(r);
    },
  });
}
