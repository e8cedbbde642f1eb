// What the monitor knows: per job, per rank the latest loss report and a bounded loss history;
// per job the latest evaluation and a bounded history of every numeric metric. Fed by train.loss
// and train.eval (see subscribe.ts); read by the terminal view (render.ts) and the web server
// (server.ts), which also listens for each accepted report to stream it to open pages.
// Liveness: every actor beats on `<job>.hb.<actor>`; a job is `live` while any of its actors beat
// (or it reports) within `staleMs`, `stopped` after that, and `live` again when they come back.
// The monitor's own NATS connection state is kept here too, so the views can say when it is down.
import type { EvalReport, Heartbeat, LossReport } from '@actorflow/protocol';
import { DEFAULT_MAX_POINTS, Series, type Point } from './series.ts';

export interface RankState {
  readonly rank: number;
  latest: LossReport;
  readonly loss: Series;
}

/** `live` while the job's actors beat (or it reports); `stopped` after `staleMs` of silence. */
export type JobStatus = 'live' | 'stopped';

/** The monitor's own NATS connection: `reconnecting` while it is down, `closed` for good. */
export type ConnectionState = 'connected' | 'reconnecting' | 'closed';

export interface JobState {
  readonly job: string;
  strategy: string;
  backend: string;
  /** Wall-clock ms of the last report (loss or eval), for ordering and eviction. */
  updatedAt: number;
  /** Monitor-clock ms of the last heartbeat or report of the job. */
  lastSeen: number;
  status: JobStatus;
  /** Monitor-clock ms of the last status change (creation counts). */
  statusChangedAt: number;
  /** Last heartbeat per actor name (monitor-clock ms). */
  readonly actors: Map<string, number>;
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
  readonly status: JobStatus;
  readonly lastSeen: number;
  /** Actors that beat within `staleMs`. */
  readonly actors: number;
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
  /** The monitor's NATS connection. */
  readonly connection: ConnectionState;
  /** Silence after which a job shows as stopped (ms). */
  readonly staleMs: number;
  readonly jobs: JobView[];
}

/** A job's liveness as the views and the page's updates carry it. */
export interface JobStatusView {
  readonly job: string;
  readonly status: JobStatus;
  readonly lastSeen: number;
  readonly actors: number;
}

export type MonitorEvent =
  | { readonly kind: 'loss'; readonly seq: number; readonly report: LossReport }
  | { readonly kind: 'eval'; readonly seq: number; readonly report: EvalReport }
  | { readonly kind: 'status'; readonly seq: number; readonly status: JobStatusView }
  | { readonly kind: 'connection'; readonly seq: number; readonly connection: ConnectionState };

export const DEFAULT_STALE_MS = 10_000;

export interface MonitorStateOptions {
  /** Watch only this job; default all. */
  readonly job?: string;
  /** Points kept per series before downsampling (default 5000). */
  readonly maxPoints?: number;
  /** Jobs kept; the least recently updated is forgotten beyond this (default 32). */
  readonly maxJobs?: number;
  /** A job none of whose actors beat (or reported) for this long is `stopped` (default 10 s). */
  readonly staleMs?: number;
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
  readonly staleMs: number;
  readonly #jobs = new Map<string, JobState>();
  readonly #listeners = new Set<(e: MonitorEvent) => void>();
  readonly #now: () => number;
  #seq = 0;
  #rejected = 0;
  #lastRejection: string | undefined;
  #connection: ConnectionState = 'connected';
  #changes = 0;

  constructor(o: MonitorStateOptions = {}) {
    this.filter = o.job;
    this.maxPoints = o.maxPoints ?? DEFAULT_MAX_POINTS;
    this.maxJobs = o.maxJobs ?? 32;
    this.staleMs = o.staleMs ?? DEFAULT_STALE_MS;
    this.#now = o.now ?? Date.now;
  }

  /** The state's clock (ms), the one `updatedAt`, `lastSeen` and `statusChangedAt` are on. */
  now(): number {
    return this.#now();
  }

  /** Grows with every accepted report, status change and connection change (the views redraw on it). */
  get version(): number {
    return this.#seq + this.#changes;
  }

  get connection(): ConnectionState {
    return this.#connection;
  }

  /** Records the monitor's own connection state (from nc.status(); see subscribe.ts). */
  setConnection(c: ConnectionState): void {
    if (c === this.#connection || this.#connection === 'closed') return;
    this.#connection = c;
    this.#changes++;
    this.#emit({ kind: 'connection', seq: this.#seq, connection: c });
  }

  /** Records an actor's heartbeat; false when its job is filtered out (or it is a monitor's). */
  onHeartbeat(hb: Heartbeat): boolean {
    if (hb.role === 'monitor' || !this.accepts(hb.job)) return false;
    const known = this.#jobs.has(hb.job);
    const j = known ? (this.#jobs.get(hb.job) as JobState) : this.#job(hb.job);
    j.actors.set(hb.actor ?? `${hb.role}${hb.rank !== undefined ? `-${hb.rank}` : ''}`, this.#now());
    this.#seen(j);
    if (!known) {
      // A job seen first by its heartbeats (no report yet): the views and pages learn of it now.
      this.#changes++;
      this.#emit({ kind: 'status', seq: this.#seq, status: this.statusOf(j) });
    }
    return true;
  }

  /** Marks jobs silent for more than `staleMs` as stopped (emitting `status`); returns them. */
  sweep(): JobState[] {
    const now = this.#now();
    const stopped: JobState[] = [];
    for (const j of this.#jobs.values()) {
      if (j.status === 'live' && now - j.lastSeen > this.staleMs) {
        j.status = 'stopped';
        j.statusChangedAt = now;
        stopped.push(j);
        this.#changes++;
        this.#emit({ kind: 'status', seq: this.#seq, status: this.statusOf(j) });
      }
    }
    return stopped;
  }

  /** Sweeps every `intervalMs` (default 1 s) until the returned function is called. */
  watchLiveness(intervalMs = 1000): () => void {
    const timer = setInterval(() => this.sweep(), intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** A job's liveness: status, last sign of life, actors beating within `staleMs`. */
  statusOf(j: JobState): JobStatusView {
    const now = this.#now();
    let actors = 0;
    for (const at of j.actors.values()) if (now - at <= this.staleMs) actors++;
    return { job: j.job, status: j.status, lastSeen: j.lastSeen, actors };
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
    this.#seen(j);
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
    this.#seen(j);
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
      connection: this.#connection,
      staleMs: this.staleMs,
      jobs: this.jobs().map((j) => ({
        job: j.job,
        strategy: j.strategy,
        backend: j.backend,
        updatedAt: j.updatedAt,
        ...(({ status, lastSeen, actors }) => ({ status, lastSeen, actors }))(this.statusOf(j)),
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
      const now = this.#now();
      j = { job: id, strategy: '', backend: '', updatedAt: now, lastSeen: now, status: 'live', statusChangedAt: now, actors: new Map(), ranks: new Map(), lastEval: undefined, metrics: new Map() };
      this.#jobs.set(id, j);
      if (this.#jobs.size > this.maxJobs) {
        const oldest = [...this.#jobs.values()].filter((x) => x !== j).reduce((a, b) => (b.updatedAt < a.updatedAt ? b : a));
        this.#jobs.delete(oldest.job);
      }
    }
    j.updatedAt = this.#now();
    return j;
  }

  /** A sign of life: a stopped job is live again. */
  #seen(j: JobState): void {
    const now = this.#now();
    j.lastSeen = now;
    if (j.status === 'stopped') {
      j.status = 'live';
      j.statusChangedAt = now;
      this.#changes++;
      this.#emit({ kind: 'status', seq: this.#seq, status: this.statusOf(j) });
    }
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
