// The launcher's live view of a job, fed by `train.loss` and `train.eval`. Prints one line per
// interval (not per step: a job can run hundreds of steps a second), so it reads the same in a
// terminal, a CI log or a file.
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

export class Progress {
  readonly #plan: JobPlan;
  readonly #log: (line: string) => void;
  readonly #ranks = new Map<number, RankState>();
  readonly #started = Date.now();
  #lastPrint = 0;
  #totalSteps: number | undefined;
  #backend: string | undefined;
  #lastEval: Record<string, number> | undefined;
  readonly #intervalMs: number;
  readonly #speed = { first: Number.POSITIVE_INFINITY, last: Number.NEGATIVE_INFINITY, reports: 0, examples: 0, computeMs: 0, serdeMs: 0, waitMs: 0, timed: 0 };

  constructor(plan: JobPlan, log: (line: string) => void, intervalMs = 2000) {
    this.#plan = plan;
    this.#log = log;
    this.#intervalMs = intervalMs;
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
    const perStep = this.#plan.strategy === 'mirrored' ? this.#plan.batchSize * this.#plan.trainers : this.#plan.batchSize;
    // Steps per rank in mirrored; total pushes over all trainers in ps.
    this.#totalSteps = Math.ceil(rows / perStep) * this.#plan.epochs;
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
    this.#countSpeed(msg);
    const now = Date.now();
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
    const secs = ((Date.now() - this.#started) / 1000).toFixed(0);
    const evalPart = this.#lastEval !== undefined ? ` | last eval ${formatMetrics(this.#lastEval)}` : '';
    return (
      `[${secs}s] step ${steps}${this.#totalSteps !== undefined ? `/${this.#totalSteps}` : ''}${pct} epoch ${epoch} ` +
      `loss ${meanLoss.toFixed(4)} ${Math.round(rate)} ex/s over ${ranks.length} rank(s)` +
      `${this.#backend !== undefined ? ` [${this.#backend}]` : ''}${evalPart}`
    );
  }

  #countSpeed(msg: Record<string, unknown>): void {
    const ts = num(msg.ts);
    const examples = num(msg.examples);
    if (msg.done === true || ts === undefined || examples === undefined || examples <= 0) return;
    const s = this.#speed;
    s.first = Math.min(s.first, ts);
    s.last = Math.max(s.last, ts);
    s.reports++;
    s.examples += examples;
    if (isRecord(msg.timing)) {
      const c = num(msg.timing.computeMs);
      const z = num(msg.timing.serdeMs);
      const w = num(msg.timing.waitMs);
      if (c !== undefined && z !== undefined && w !== undefined) {
        s.computeMs += c;
        s.serdeMs += z;
        s.waitMs += w;
        s.timed++;
      }
    }
  }

  /** Training speed over the job so far; undefined before two step reports. */
  throughput(): Throughput | undefined {
    const s = this.#speed;
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
