// How a job started by hand (no launcher) ends. The config owner (aggregator shard 0) watches the
// trainers' reports on train.loss; when every trainer it has heard from reported done (and, for a
// mirrored group, the whole group), it asks the evaluator for the final score, writes what the
// launcher writes (the model, metrics.json, the evaluation history) when it has --out, and
// announces the end on <job>.ctl.stop. The data shards, the evaluator and the other parameter
// shards exit on that message unless --keep-serving. Under a launcher (ACTORFLOW_SUPERVISED=1)
// none of this runs: the launcher ends the job and stops its actors.
import { join } from 'node:path';
import { listActorServices, requestWithRetry, type ActorConnection, type NatsConnection } from '@actorflow/bus';
import { DataClient, type DatasetInfo } from '@actorflow/feed';
import { evalNowRequestCodec, evalReportCodec, lossReportCodec, stopCodec, subjects, type EvalReport, type JobConfig } from '@actorflow/protocol';
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
  const sub = nc.subscribe(subjects.loss, {
    callback: (_e, m) => {
      let r;
      try {
        r = lossReportCodec.decode(m.data);
      } catch {
        return; // not a loss report
      }
      if (r.job !== job) return;
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
    },
  });
  return {
    done,
    stop: () => {
      if (timer !== undefined) clearTimeout(timer);
      sub.unsubscribe();
    },
  };
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

/** The metrics.json of a by-hand job: the launcher's fields that a by-hand job has. */
export interface ByHandResult {
  readonly job: string;
  readonly strategy: string;
  readonly model: string;
  readonly metrics: Readonly<Record<string, number>>;
  readonly steps: number;
  readonly seconds: number;
  readonly noiseFloorRmse?: number;
  readonly out?: string;
  readonly checkpoint?: Record<string, string>;
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
  // A mirrored group, and kNN's ranks (each computes its share of the blocks), are the whole world; ps trainers come and go.
  const whole = !o.workload.hasParameters(config);
  const watch = trainersDone(nc, job, { minRanks: (strategy) => (strategy === 'mirrored' || whole ? config.worldSize : 1) });
  const done = await watch.done;
  log(`job ${job}: every trainer is done (rank(s) ${done.ranks.join(', ')}, step ${done.steps}); final evaluation …`);
  let report: EvalReport | undefined;
  const evaluators = (await listActorServices(nc, { job, timeoutMs: 2000 }).catch(() => [])).filter((x) => x.metadata?.role === 'evaluator');
  if (evaluators.length === 0) log(`warning: no evaluator of job ${job} is running: no final evaluation (start one with \`npx nx serve evaluator -- --job ${job}\`)`);
  else
    try {
      report = evalReportCodec.decode(
        await requestWithRetry(nc, subjects.evalNow(job), evalNowRequestCodec.encode({ final: true }), { deadlineMs: o.evalDeadlineMs ?? 120_000, attemptTimeoutMs: 110_000 }),
      );
    } catch (err) {
      log(`warning: no final evaluation (${(err as Error).message}); start an evaluator (\`npx nx serve evaluator -- --job ${job}\`) to get one`);
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
  const result: ByHandResult = {
    job,
    strategy: done.strategy,
    model: config.model,
    metrics: report?.metrics ?? {},
    steps: Math.max(report?.step ?? 0, done.steps),
    seconds: (Date.now() - o.started) / 1000,
    ...(typeof info?.noiseFloorRmse === 'number' ? { noiseFloorRmse: info.noiseFloorRmse } : {}),
    ...(o.out !== undefined ? { out: o.out } : {}),
    ...(checkpoint !== undefined ? { checkpoint } : {}),
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
