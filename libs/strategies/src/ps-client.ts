// Trainer side of the parameter server: routes pulls and pushes to the shards that own the rows
// (ownerOfRow / ownerOfDense in ps.ts), in parallel.
//
// Every request rides out a broker restart or a restarting shard (requestWithRetry, until the
// retry deadline): pulls, stats and snapshots are idempotent; a push carries a pushId
// `<rank>:<incarnation>:<seq>` reused by its retries, so a shard applies it at most once. A shard
// restarted from a checkpoint is behind the version this trainer pulled: the push it refuses
// (BAD_VERSION) is counted as dropped, and the next pull catches up.
import { randomBytes } from 'node:crypto';
import { RemoteError, requestWithRetry, type NatsConnection, type RetryOptions } from '@actorflow/bus';
import type { GatheredParams, StepResult } from '@actorflow/models';
import { gradientCodec, pullReplyCodec, pullRequestCodec, pushReplyCodec, snapshotCodec, subjects, type PushReply, type Snapshot } from '@actorflow/protocol';
import { ownerOfDense, ownerOfRow, psStatsSubject, type ShardStats } from './ps.ts';

export interface PsClientOptions {
  readonly job: string;
  readonly shards: number;
  /** This trainer's rank (pull requests and pushIds name it). */
  readonly rank?: number;
  /** Bound on one attempt of a request (default 30 s; snapshots get 4×). */
  readonly timeoutMs?: number;
  /** Retry deadline and backoff (default: requestWithRetry's, the job-level ACTORFLOW_RETRY_DEADLINE_S or 120 s). */
  readonly retry?: Omit<RetryOptions, 'attemptTimeoutMs' | 'onRetry'>;
  /** Told about retries and pushes dropped after a shard restart (at most one line per shard and kind per 5 s). */
  readonly log?: (line: string) => void;
}

/** What the client saw go wrong and rode out. */
export interface PsClientCounters {
  /** Attempts retried (timeouts, no responders, connection drops), all requests. */
  readonly retries: number;
  /** Pushes a shard refused with BAD_VERSION (it restarted from an older checkpoint), per shard. */
  readonly droppedPushes: readonly number[];
}

const LOG_INTERVAL_MS = 5000;

/** Trainer side: routes pulls and pushes to the owning shards, in parallel. */
export class PsClient {
  readonly #nc: NatsConnection;
  readonly #job: string;
  readonly #shards: number;
  readonly #timeoutMs: number;
  readonly #retry: Omit<RetryOptions, 'attemptTimeoutMs' | 'onRetry'>;
  readonly #log: ((line: string) => void) | undefined;
  readonly #loggedAt = new Map<string, number>();
  /** Tells this process's pushes apart from those of an earlier run of the same rank. */
  readonly #incarnation = randomBytes(6).toString('hex');
  #pushSeq = 0;
  #retries = 0;
  readonly #dropped: number[];
  #versions: number[];
  #serdeMs = 0;

  /** Milliseconds spent encoding requests and decoding replies since the last call (then reset). */
  takeSerdeMs(): number {
    const ms = this.#serdeMs;
    this.#serdeMs = 0;
    return ms;
  }

  readonly #rank: number;

  constructor(nc: NatsConnection, o: PsClientOptions) {
    this.#nc = nc;
    this.#rank = o.rank ?? 0;
    this.#job = o.job;
    this.#shards = o.shards;
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#retry = o.retry ?? {};
    this.#log = o.log;
    this.#versions = new Array<number>(o.shards).fill(0);
    this.#dropped = new Array<number>(o.shards).fill(0);
  }

  get counters(): PsClientCounters {
    return { retries: this.#retries, droppedPushes: [...this.#dropped] };
  }

  #logLimited(key: string, line: string): void {
    if (this.#log === undefined) return;
    const now = Date.now();
    if (now - (this.#loggedAt.get(key) ?? -Infinity) < LOG_INTERVAL_MS) return;
    this.#loggedAt.set(key, now);
    this.#log(line);
  }

  #request(subject: string, payload: Uint8Array, shard: number, attemptTimeoutMs = this.#timeoutMs): Promise<Uint8Array> {
    return requestWithRetry(this.#nc, subject, payload, {
      ...this.#retry,
      attemptTimeoutMs,
      onRetry: (attempt, err) => {
        this.#retries++;
        this.#logLimited(`retry:${shard}`, `parameter shard ${shard}: retrying ${subject} (attempt ${attempt} failed: ${err.message})`);
      },
    });
  }

  #split(tables: Readonly<Record<string, Int32Array>>): Record<string, Int32Array>[] {
    const parts = Array.from({ length: this.#shards }, () => ({}) as Record<string, number[]>);
    for (const [name, rows] of Object.entries(tables)) {
      for (const r of rows) (parts[ownerOfRow(name, r, this.#shards)][name] ??= []).push(r);
    }
    return parts.map((p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Int32Array.from(v)])));
  }

  /** Pulls rows (sorted, unique per table) and all dense tensors; remembers each shard's version. */
  async pull(tables: Readonly<Record<string, Int32Array>>, dense: readonly string[]): Promise<GatheredParams> {
    const parts = this.#split(tables);
    const t0 = performance.now();
    const requests = parts.map((part, k) => pullRequestCodec.encode({ job: this.#job, rank: this.#rank, tables: part, dense: dense.filter((n) => ownerOfDense(n, this.#shards) === k) }));
    this.#serdeMs += performance.now() - t0;
    const raw = await Promise.all(requests.map((req, k) => this.#request(subjects.psPull(this.#job, k), req, k)));
    const t1 = performance.now();
    const replies = raw.map((b) => pullReplyCodec.decode(b));
    this.#serdeMs += performance.now() - t1;
    this.#versions = replies.map((r) => r.version);
    const outTables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
    for (const [name, rows] of Object.entries(tables)) {
      const dim = replies.find((r) => r.tables[name] !== undefined)?.tables[name].dim ?? 1;
      const values = new Float32Array(rows.length * dim);
      // Rows came back per shard in the order sent; put them back in the requested order.
      const pos = new Map<number, number>();
      rows.forEach((r, i) => pos.set(r, i));
      for (const reply of replies) {
        const t = reply.tables[name];
        if (t === undefined) continue;
        t.rows.forEach((r, i) => values.set(t.values.subarray(i * dim, (i + 1) * dim), (pos.get(r) as number) * dim));
      }
      outTables[name] = { rows, values };
    }
    const outDense: Record<string, Float32Array> = {};
    for (const r of replies) Object.assign(outDense, r.dense);
    return { tables: outTables, dense: outDense };
  }

  /**
   * Pushes each shard its slice of the gradient, with the version pulled from that shard and one
   * pushId for all its retries. A shard that refuses it with BAD_VERSION (restarted from an older
   * checkpoint) answers `{ accepted: false, reason: 'BAD_VERSION' }` here (version: the one pulled).
   */
  async push(step: number, result: StepResult, rank: number): Promise<PushReply[]> {
    const pushId = `${rank}:${this.#incarnation}:${this.#pushSeq++}`;
    const sparseParts = Array.from({ length: this.#shards }, () => ({}) as Record<string, { rows: Int32Array; values: Float32Array }>);
    for (const [name, g] of Object.entries(result.sparse)) {
      const dim = g.rows.length === 0 ? 1 : g.values.length / g.rows.length;
      const byShard = new Map<number, number[]>();
      g.rows.forEach((r, i) => {
        const k = ownerOfRow(name, r, this.#shards);
        (byShard.get(k) ?? (byShard.set(k, []).get(k) as number[])).push(i);
      });
      for (const [k, idx] of byShard) {
        const rows = Int32Array.from(idx, (i) => g.rows[i]);
        const values = new Float32Array(idx.length * dim);
        idx.forEach((i, j) => values.set(g.values.subarray(i * dim, (i + 1) * dim), j * dim));
        sparseParts[k][name] = { rows, values };
      }
    }
    const t0 = performance.now();
    const msgs = sparseParts.map((sparse, k) => {
      const dense = Object.fromEntries(Object.entries(result.dense).filter(([n]) => ownerOfDense(n, this.#shards) === k));
      return gradientCodec.encode({ job: this.#job, rank, step, paramVersion: this.#versions[k], count: result.count, loss: result.loss, dense, sparse, pushId });
    });
    this.#serdeMs += performance.now() - t0;
    const raw = await Promise.all(
      msgs.map((msg, k) =>
        this.#request(subjects.psPush(this.#job, k), msg, k).catch((err: unknown) => {
          if (!(err instanceof RemoteError && err.code === 'BAD_VERSION')) throw err;
          this.#dropped[k]++;
          this.#logLimited(
            `dropped:${k}`,
            `parameter shard ${k} refused a push pulled at version ${this.#versions[k]} (BAD_VERSION: it restarted from an older checkpoint); ${this.#dropped[k]} push(es) dropped so far, the next pull catches up`,
          );
          return undefined;
        }),
      ),
    );
    const t1 = performance.now();
    const replies = raw.map((b, k): PushReply => (b === undefined ? { version: this.#versions[k], staleness: 0, accepted: false, reason: 'BAD_VERSION' } : pushReplyCodec.decode(b)));
    this.#serdeMs += performance.now() - t1;
    return replies;
  }

  /** Every shard's counters (applied, dropped, rejected by reason and sender). */
  async stats(): Promise<ShardStats[]> {
    return Promise.all(
      Array.from({ length: this.#shards }, (_, k) => this.#request(psStatsSubject(this.#job, k), new Uint8Array(0), k).then((b) => JSON.parse(new TextDecoder().decode(b)) as ShardStats)),
    );
  }

  /** Every shard's snapshot merged into one set of tables (for evaluation and checkpoints). */
  async snapshot(): Promise<Snapshot[]> {
    return Promise.all(
      Array.from({ length: this.#shards }, (_, k) => this.#request(subjects.psSnapshot(this.#job, k), new Uint8Array(0), k, this.#timeoutMs * 4).then((b) => snapshotCodec.decode(b))),
    );
  }
}
