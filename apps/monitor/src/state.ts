// What the monitor knows: per job, per rank the latest loss report and a bounded loss history;
// per job the latest evaluation and a bounded history of every numeric metric. Fed by train.loss
// and train.eval (see subscribe.ts); read by the terminal view (render.ts) and the web server
// (server.ts), which also listens for each accepted report to stream it to open pages.
import type { EvalReport, LossReport } from '@actorflow/protocol';
import { DEFAULT_MAX_POINTS, Series, type Point } from './series.ts';

export interface RankState {
  readonly rank: number;
  latest: LossReport;
  readonly loss: Series;
}

export interface JobState {
  readonly job: string;
  strategy: string;
  backend: string;
  /** Wall-clock ms of the last report (loss or eval), for ordering and eviction. */
  updatedAt: number;
  readonly ranks: Map<number, RankState>;
  lastEval: EvalReport | undefined;
  readonly metrics: Map<string, Series>;
}

/** JSON form of a series (NaN never appears: non-finite values are not plotted). */
export interface SeriesView {
  readonly points: Point[];
  readonly stride: number;
}

export interface RankView extends SeriesView {
  readonly rank: number;
  readonly step: number;
  readonly epoch: number;
  /** null when the loss is not finite (diverged). */
  readonly loss: number | null;
  readonly examples: number;
  readonly examplesPerSec: number;
  readonly done: boolean;
  readonly ts: number;
  readonly timing?: LossReport['timing'];
}

export interface EvalView {
  readonly step: number;
  readonly ts: number;
  readonly final: boolean;
  readonly metrics: Readonly<Record<string, number | null>>;
}

export interface JobView {
  readonly job: string;
  readonly strategy: string;
  readonly backend: string;
  readonly updatedAt: number;
  readonly ranks: RankView[];
  readonly eval: EvalView | null;
  readonly metrics: Readonly<Record<string, SeriesView>>;
}

/** What `/state` serves and the page starts from. */
export interface StateSnapshot {
  /** The one job watched (`--job`), or null for all jobs. */
  readonly filter: string | null;
  readonly maxPoints: number;
  /** Number of reports accepted so far. */
  readonly seq: number;
  /** Messages that were not valid reports. */
  readonly rejected: number;
  readonly jobs: JobView[];
}

export type MonitorEvent = { readonly kind: 'loss'; readonly seq: number; readonly report: LossReport } | { readonly kind: 'eval'; readonly seq: number; readonly report: EvalReport };

export interface MonitorStateOptions {
  /** Watch only this job; default all. */
  readonly job?: string;
  /** Points kept per series before downsampling (default 5000). */
  readonly maxPoints?: number;
  /** Jobs kept; the least recently updated is forgotten beyond this (default 32). */
  readonly maxJobs?: number;
  readonly now?: () => number;
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

function seriesView(s: Series): SeriesView {
  return { points: s.points(), stride: s.stride };
}

export class MonitorState {
  readonly filter: string | undefined;
  readonly maxPoints: number;
  readonly maxJobs: number;
  readonly #jobs = new Map<string, JobState>();
  readonly #listeners = new Set<(e: MonitorEvent) => void>();
  readonly #now: () => number;
  #seq = 0;
  #rejected = 0;
  #lastRejection: string | undefined;

  constructor(o: MonitorStateOptions = {}) {
    this.filter = o.job;
    this.maxPoints = o.maxPoints ?? DEFAULT_MAX_POINTS;
    this.maxJobs = o.maxJobs ?? 32;
    this.#now = o.now ?? Date.now;
  }

  /** True when reports of `job` are wanted. */
  accepts(job: string): boolean {
    return this.filter === undefined || this.filter === job;
  }

  get seq(): number {
    return this.#seq;
  }

  get rejected(): number {
    return this.#rejected;
  }

  get lastRejection(): string | undefined {
    return this.#lastRejection;
  }

  /** Jobs, most recently updated first. */
  jobs(): JobState[] {
    return [...this.#jobs.values()].sort((a, b) => b.updatedAt - a.updatedAt || a.job.localeCompare(b.job));
  }

  job(id: string): JobState | undefined {
    return this.#jobs.get(id);
  }

  /** Records a loss report; false when its job is filtered out. */
  onLoss(r: LossReport): boolean {
    if (!this.accepts(r.job)) return false;
    const j = this.#job(r.job);
    j.strategy = r.strategy;
    j.backend = r.backend;
    let rank = j.ranks.get(r.rank);
    if (rank === undefined) {
      rank = { rank: r.rank, latest: r, loss: new Series(this.maxPoints) };
      j.ranks.set(r.rank, rank);
    }
    rank.latest = r;
    rank.loss.push(r.step, r.loss);
    this.#emit({ kind: 'loss', seq: ++this.#seq, report: r });
    return true;
  }

  /** Records an evaluation; false when its job is filtered out. */
  onEval(r: EvalReport): boolean {
    if (!this.accepts(r.job)) return false;
    const j = this.#job(r.job);
    j.lastEval = r;
    for (const [name, value] of Object.entries(r.metrics)) {
      let s = j.metrics.get(name);
      if (s === undefined) {
        s = new Series(this.maxPoints);
        j.metrics.set(name, s);
      }
      s.push(r.step, value);
    }
    this.#emit({ kind: 'eval', seq: ++this.#seq, report: r });
    return true;
  }

  /** Counts a message that was not a valid report (shown in the views). */
  reject(reason: string): void {
    this.#rejected++;
    this.#lastRejection = reason;
  }

  /** Calls `listener` for every accepted report; returns the unsubscribe function. */
  listen(listener: (e: MonitorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  snapshot(): StateSnapshot {
    return {
      filter: this.filter ?? null,
      maxPoints: this.maxPoints,
      seq: this.#seq,
      rejected: this.#rejected,
      jobs: this.jobs().map((j) => ({
        job: j.job,
        strategy: j.strategy,
        backend: j.backend,
        updatedAt: j.updatedAt,
        ranks: [...j.ranks.values()]
          .sort((a, b) => a.rank - b.rank)
          .map((r) => ({
            rank: r.rank,
            step: r.latest.step,
            epoch: r.latest.epoch,
            loss: finiteOrNull(r.latest.loss),
            examples: r.latest.examples,
            examplesPerSec: r.latest.examplesPerSec,
            done: r.latest.done === true,
            ts: r.latest.ts,
            ...(r.latest.timing !== undefined ? { timing: r.latest.timing } : {}),
            ...seriesView(r.loss),
          })),
        eval:
          j.lastEval === undefined
            ? null
            : {
                step: j.lastEval.step,
                ts: j.lastEval.ts,
                final: j.lastEval.final === true,
                metrics: Object.fromEntries(Object.entries(j.lastEval.metrics).map(([k, v]) => [k, finiteOrNull(v)])),
              },
        metrics: Object.fromEntries([...j.metrics].map(([k, s]) => [k, seriesView(s)])),
      })),
    };
  }

  #job(id: string): JobState {
    let j = this.#jobs.get(id);
    if (j === undefined) {
      j = { job: id, strategy: '', backend: '', updatedAt: 0, ranks: new Map(), lastEval: undefined, metrics: new Map() };
      this.#jobs.set(id, j);
      if (this.#jobs.size > this.maxJobs) {
        const oldest = [...this.#jobs.values()].filter((x) => x !== j).reduce((a, b) => (b.updatedAt < a.updatedAt ? b : a));
        this.#jobs.delete(oldest.job);
      }
    }
    j.updatedAt = this.#now();
    return j;
  }

  #emit(e: MonitorEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        /* a broken listener must not stop the others */
      }
    }
  }
}
