// The launcher's live view of a job, fed by `train.loss` and `train.eval`. Prints one line per
// interval (not per step: a job can run hundreds of steps a second), so it reads the same in a
// terminal, a CI log or a file.
import { ThroughputMeter, formatDuration, type Throughput } from '@actorflow/workloads';
import type { JobPlan } from './flags.ts';

interface RankState {
  step: number;
  epoch: number;
  loss: number;
  examplesPerSec: number;
  done: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export type { Throughput } from '@actorflow/workloads';
export { formatDuration } from '@actorflow/workloads';

export class Progress {
  readonly #plan: JobPlan;
  readonly #log: (line: string) => void;
  readonly #ranks = new Map<number, RankState>();
  readonly #started: number;
  #lastPrint = 0;
  #totalSteps: number | undefined;
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
  /** Where the ETA's rate is measured from (reset when the world size changes). */
  #rateFrom: { t: number; steps: number } | undefined;

  constructor(plan: JobPlan, log: (line: string) => void, intervalMs = 2000, now: () => number = Date.now) {
    this.#plan = plan;
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#started = now();
    this.#world = plan.trainers;
    this.#segments = [{ fromStep: 0, epoch: 0, stepInEpoch: 0, world: plan.trainers }];
  }

  get maxStep(): number {
    let max = 0;
    for (const r of this.#ranks.values()) max = Math.max(max, r.step);
    return max;
  }

  /** Steps done so far: summed over the trainers in ps (pushes), the furthest rank's in mirrored. */
  get stepsDone(): number {
    if (this.#plan.strategy !== 'ps') return this.maxStep;
    let sum = 0;
    for (const r of this.#ranks.values()) sum += r.step;
    return sum;
  }

  /** The last step each rank reported (a restarted ps trainer continues its count from here). */
  rankSteps(): Record<string, number> {
    return Object.fromEntries([...this.#ranks.entries()].map(([rank, r]) => [String(rank), r.step]));
  }

  /** Forgets ranks (a mirrored group re-formed with fewer ranks). */
  keepRanks(n: number): void {
    for (const rank of [...this.#ranks.keys()]) if (rank >= n) this.#ranks.delete(rank);
  }

  /** Resumed job: the step total counts what is left to do as already done up to `steps`. */
  setResumedSteps(byRank: Readonly<Record<string, number>>): void {
    for (const [rank, step] of Object.entries(byRank)) this.#ranks.set(Number(rank), { step, epoch: 0, loss: Number.NaN, examplesPerSec: 0, done: false });
  }

  setDataInfo(info: Record<string, unknown>): void {
    this.setExamples(num(info.trainRows));
  }

  /** Training examples per epoch (rating rows, users, items or images), for the step total. */
  setExamples(rows: number | undefined): void {
    if (rows === undefined) return;
    this.#rows = rows;
    this.#totalSteps = this.#plannedTotal();
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
    for (const r of this.#ranks.values()) r.step = Math.min(r.step, resumedStep);
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
    this.#rateFrom = undefined;
    if (this.#rows !== undefined && this.#totalSteps !== undefined) this.#totalSteps = this.#plannedTotal();
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
    this.#totalSteps = total;
  }

  onLoss(msg: unknown): void {
    if (!isRecord(msg) || msg.job !== this.#plan.job) return;
    const rank = num(msg.rank);
    if (rank === undefined) return;
    this.#ranks.set(rank, {
      step: num(msg.step) ?? 0,
      epoch: num(msg.epoch) ?? 0,
      loss: num(msg.loss) ?? Number.NaN,
      examplesPerSec: num(msg.examplesPerSec) ?? 0,
      done: msg.done === true,
    });
    if (typeof msg.backend === 'string') this.#backend = msg.backend;
    this.#speed.add(msg);
    const now = this.#now();
    this.#rateFrom ??= { t: now, steps: this.stepsDone };
    if (now - this.#lastPrint >= this.#intervalMs) {
      this.#lastPrint = now;
      this.#log(this.line());
    }
  }

  onEval(msg: unknown): void {
    if (!isRecord(msg) || msg.job !== this.#plan.job || !isRecord(msg.metrics)) return;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(msg.metrics)) if (typeof v === 'number') metrics[k] = v;
    this.#lastEval = metrics;
    this.#log(`eval @ step ${String(msg.step)}: ${formatMetrics(metrics)}`);
  }

  line(): string {
    const ranks = [...this.#ranks.entries()].sort((a, b) => a[0] - b[0]);
    const steps = this.#plan.strategy === 'ps' ? ranks.reduce((s, [, r]) => s + r.step, 0) : this.maxStep;
    const pct = this.#totalSteps !== undefined ? ` (${Math.min(100, (100 * steps) / this.#totalSteps).toFixed(0)} %)` : '';
    const meanLoss = ranks.length > 0 ? ranks.reduce((s, [, r]) => s + r.loss, 0) / ranks.length : Number.NaN;
    const rate = ranks.reduce((s, [, r]) => s + r.examplesPerSec, 0);
    const epoch = ranks.length > 0 ? Math.max(...ranks.map(([, r]) => r.epoch)) : 0;
    const now = this.#now();
    const secs = ((now - this.#started) / 1000).toFixed(0);
    const evalPart = this.#lastEval !== undefined ? ` | last eval ${formatMetrics(this.#lastEval)}` : '';
    const eta = this.etaSeconds(now);
    return (
      `[${secs}s] step ${steps}${this.#totalSteps !== undefined ? `/${this.#totalSteps}` : ''}${pct} epoch ${epoch} ` +
      `loss ${meanLoss.toFixed(4)} ${Math.round(rate)} ex/s over ${ranks.length} rank(s)` +
      `${this.#backend !== undefined ? ` [${this.#backend}]` : ''}${evalPart}${eta !== undefined ? ` | ETA ${formatDuration(eta)}` : ''}`
    );
  }

  /**
   * Seconds left at the step rate seen since the last world-size change (or the start), or
   * undefined before a second of it, without a step total, or once the total is reached.
   */
  etaSeconds(now = this.#now()): number | undefined {
    const from = this.#rateFrom;
    const total = this.#totalSteps;
    const steps = this.stepsDone;
    if (from === undefined || total === undefined || now - from.t < 1000 || steps <= from.steps || steps >= total) return undefined;
    const perSecond = (steps - from.steps) / ((now - from.t) / 1000);
    return (total - steps) / perSecond;
  }

  /** Training speed over the job so far; undefined before two step reports. */
  throughput(): Throughput | undefined {
    return this.#speed.throughput();
  }

  finish(): void {
    if (this.#ranks.size > 0) this.#log(this.line());
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
