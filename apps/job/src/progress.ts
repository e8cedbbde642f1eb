// The launcher's live view of a job, fed by `train.loss` and `train.eval`. Prints one line per
// interval (not per step: a job can run hundreds of steps a second), so it reads the same in a
// terminal, a CI log or a file.
import type { EvalReport, LossReport } from '@actorflow/protocol';
import { JobProgress, ThroughputMeter, type Throughput } from '@actorflow/workloads';
import type { JobPlan } from './flags.ts';

export type { Throughput } from '@actorflow/workloads';
export { formatDuration } from '@actorflow/workloads';

/**
 * The launcher's progress: the by-hand trainer's JobProgress (libs/workloads: per-rank steps, the
 * step count, the line, the ETA) plus what only the launcher knows — the planned total as the
 * data shards and a shrinking mirrored group define it, the last evaluation, metrics.json's meter.
 */
export class Progress {
  readonly #plan: JobPlan;
  readonly #log: (line: string) => void;
  readonly #core: JobProgress;
  readonly #started: number;
  #lastPrint = 0;
  #backend: string | undefined;
  #lastEval: Record<string, number> | undefined;
  readonly #intervalMs: number;
  /** metrics.json's throughput: the meter a by-hand job's config owner uses too (libs/workloads). */
  readonly #speed = new ThroughputMeter();
  readonly #now: () => number;
  /** Training examples per epoch, once known (the step total follows the world size from it). */
  #rows: number | undefined;
  /** Mirrored: the group's current world size (it shrinks with --min-trainers). */
  #world: number;
  /** Mirrored: one segment per world size — the global step it starts at and where in which epoch that is. */
  readonly #segments: { fromStep: number; epoch: number; stepInEpoch: number; world: number }[];

  constructor(plan: JobPlan, log: (line: string) => void, intervalMs = 2000, now: () => number = Date.now) {
    this.#plan = plan;
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#core = new JobProgress({ strategy: plan.strategy, totalSteps: undefined, now });
    this.#started = now();
    this.#world = plan.trainers;
    this.#segments = [{ fromStep: 0, epoch: 0, stepInEpoch: 0, world: plan.trainers }];
  }

  get maxStep(): number {
    return this.#core.maxStep;
  }

  /** Steps done so far: summed over the trainers in ps (pushes), the furthest rank's in mirrored. */
  get stepsDone(): number {
    return this.#core.stepsDone;
  }

  /** The last step each rank reported (a restarted ps trainer continues its count from here). */
  rankSteps(): Record<string, number> {
    return this.#core.rankSteps();
  }

  /** Forgets ranks (a mirrored group re-formed with fewer ranks). */
  keepRanks(n: number): void {
    this.#core.keepRanks(n);
  }

  /** Resumed job: the step total counts what is left to do as already done up to `steps`. */
  setResumedSteps(byRank: Readonly<Record<string, number>>): void {
    this.#core.setRankSteps(byRank);
  }

  setDataInfo(info: Record<string, unknown>): void {
    const rows = info.trainRows;
    this.setExamples(typeof rows === 'number' && Number.isFinite(rows) ? rows : undefined);
  }

  /** Training examples per epoch (rating rows, users, items or images), for the step total. */
  setExamples(rows: number | undefined): void {
    if (rows === undefined) return;
    this.#rows = rows;
    this.#core.setTotalSteps(this.#plannedTotal());
  }

  /**
   * Mirrored: the group re-formed with `world` ranks, resuming at global step `resumedStep` (the
   * checkpoint it restarts from; 0 without one). Each rank keeps --batch-size, so a smaller group
   * takes smaller global steps and more of them: the step total and the ETA follow.
   * Ranks at or above `world` are forgotten. In ps, trainers come and go: only the ranks change.
   */
  setWorldSize(world: number, resumedStep = 0): void {
    this.keepRanks(world);
    if (this.#plan.strategy !== 'mirrored' || world === this.#world) return;
    // The kept ranks go back to the checkpoint with the group (their later steps are redone).
    this.#core.rewindTo(resumedStep);
    if (this.#rows !== undefined) {
      // The segment the checkpoint was written in: the last one that began before it.
      const seg = [...this.#segments].reverse().find((s) => s.fromStep < resumedStep) ?? this.#segments[0];
      const per = this.#stepsPerEpoch(seg.world);
      const pos = seg.stepInEpoch + (resumedStep - seg.fromStep);
      // As the trainer resumes (apps/trainer): the global step of the new size that starts at the same example.
      const stepInEpoch = Math.floor(((pos % per) * seg.world) / world);
      this.#segments.push({ fromStep: resumedStep, epoch: seg.epoch + Math.floor(pos / per), stepInEpoch, world });
    } else this.#segments.push({ fromStep: resumedStep, epoch: 0, stepInEpoch: 0, world }); // before the data: nothing trained yet
    this.#world = world;
    if (this.#rows !== undefined && this.#core.totalSteps !== undefined) this.#core.setTotalSteps(this.#plannedTotal());
  }

  /** The current world size (mirrored; the planned --trainers until the group shrinks). */
  get worldSize(): number {
    return this.#world;
  }

  /** Global steps of one epoch at world size `world` (ps: batches of one trainer). */
  #stepsPerEpoch(world: number): number {
    const perStep = this.#plan.strategy === 'mirrored' ? this.#plan.batchSize * world : this.#plan.batchSize;
    return Math.max(1, Math.ceil((this.#rows ?? 0) / perStep));
  }

  /** Steps per rank in mirrored (from the last world-size change on); total pushes over all trainers in ps. */
  #plannedTotal(): number {
    if (this.#plan.strategy !== 'mirrored') return this.#stepsPerEpoch(1) * this.#plan.epochs;
    const seg = this.#segments[this.#segments.length - 1] ?? { fromStep: 0, epoch: 0, stepInEpoch: 0, world: this.#world };
    const per = this.#stepsPerEpoch(seg.world);
    return seg.fromStep + Math.max(0, per - seg.stepInEpoch) + Math.max(0, this.#plan.epochs - seg.epoch - 1) * per;
  }

  /** Overrides the step total (kNN: its similarity blocks, not batches). */
  setTotalSteps(total: number): void {
    this.#core.setTotalSteps(total);
  }

  /** One of the job's train.loss reports (decoded by its codec; other jobs' are ignored). */
  onLoss(r: LossReport): void {
    if (r.job !== this.#plan.job) return;
    this.#core.onLoss(r);
    if (r.backend !== undefined) this.#backend = r.backend;
    this.#speed.add(r);
    const now = this.#now();
    if (now - this.#lastPrint >= this.#intervalMs) {
      this.#lastPrint = now;
      this.#log(this.line());
    }
  }

  /** One of the job's train.eval reports (decoded by its codec). */
  onEval(r: EvalReport): void {
    if (r.job !== this.#plan.job) return;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.metrics)) if (typeof v === 'number') metrics[k] = v;
    this.#lastEval = metrics;
    this.#log(`eval @ step ${String(r.step)}: ${formatMetrics(metrics)}`);
  }

  line(): string {
    const now = this.#now();
    const secs = ((now - this.#started) / 1000).toFixed(0);
    const extra = `${this.#backend !== undefined ? ` [${this.#backend}]` : ''}${this.#lastEval !== undefined ? ` | last eval ${formatMetrics(this.#lastEval)}` : ''}`;
    return `[${secs}s] ${this.#core.line(extra, now)}`;
  }

  /**
   * Seconds left at the step rate seen since the last world-size change (or the start), or
   * undefined before a second of it, without a step total, or once the total is reached.
   */
  etaSeconds(now = this.#now()): number | undefined {
    return this.#core.etaSeconds(now);
  }

  /** Training speed over the job so far; undefined before two step reports. */
  throughput(): Throughput | undefined {
    return this.#speed.throughput();
  }

  finish(): void {
    if (this.#core.ranks > 0) this.#log(this.line());
  }
}

/** The metrics worth a progress line, in this order, when present (ranking reports carry dozens). */
const HEADLINE = ['rmse', 'mae', 'accuracy', 'bce', 'ndcg@10', 'recall@20', 'hr@10', 'mrr', 'popularity.ndcg@10'];

export function formatMetrics(metrics: Readonly<Record<string, number>>): string {
  const shown = HEADLINE.filter((k) => k in metrics);
  return (
    (shown.length > 0 ? shown.map((k) => [k, metrics[k]] as const) : Object.entries(metrics))
      // A metric may be missing or null (NaN becomes null in JSON): show it, never crash on it.
      .map(([k, v]) => `${k} ${typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : String(v)}`)
      .join(', ')
  );
}
