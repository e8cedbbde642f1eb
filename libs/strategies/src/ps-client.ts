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
import { decodePullReply, encodeGradientFrame, gradientCodec, pullRequestCodec, pushReplyCodec, snapshotCodec, subjects, type PushReply, type Snapshot } from '@actorflow/protocol';
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
  /** Pipelined pulls a shard answered before this trainer's previous push was applied, asked again (pullAfter). */
  readonly repulls: number;
}

const LOG_INTERVAL_MS = 5000;
/**
 * ACTORFLOW_PS_WIRE=msgpack sends pushes (and asks nothing else) in the older msgpack encoding
 * instead of row frames — for before/after benchmarks; shards decode either.
 */
export const PS_WIRE_MSGPACK = process.env.ACTORFLOW_PS_WIRE === 'msgpack';

/**
 * max_payload of the broker a job launches (8 MiB, NATS's recommended ceiling): a pull or push
 * of a batch's rows (~2 MB for the seed experiment: 5k rows × 100 floats) then travels as one
 * message — no upload handshake round trip, no chunk CRCs or reassembly copies (libs/bus large.ts
 * still chunks anything larger, and on a broker with a smaller limit).
 */
export const JOB_MAX_PAYLOAD = 8 * 1024 * 1024;

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
  #repulls = 0;
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
    return { retries: this.#retries, droppedPushes: [...this.#dropped], repulls: this.#repulls };
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

  /**
   * Each shard's part of `tables` (rows in request order) and, per table, where each part's rows
   * sit in the request. One shard: the request itself, no copy.
   */
  #split(tables: Readonly<Record<string, Int32Array>>): { parts: Record<string, Int32Array>[]; at: Record<string, Int32Array>[] } {
    if (this.#shards === 1) return { parts: [{ ...tables }], at: [] };
    const parts = Array.from({ length: this.#shards }, () => ({}) as Record<string, Int32Array>);
    const at = Array.from({ length: this.#shards }, () => ({}) as Record<string, Int32Array>);
    for (const [name, rows] of Object.entries(tables)) {
      const owner = new Int32Array(rows.length);
      const counts = new Int32Array(this.#shards);
      for (let i = 0; i < rows.length; i++) counts[(owner[i] = ownerOfRow(name, rows[i], this.#shards))]++;
      const fill = new Int32Array(this.#shards);
      for (let k = 0; k < this.#shards; k++) {
        if (counts[k] === 0) continue;
        parts[k][name] = new Int32Array(counts[k]);
        at[k][name] = new Int32Array(counts[k]);
      }
      for (let i = 0; i < rows.length; i++) {
        const k = owner[i];
        const j = fill[k]++;
        parts[k][name][j] = rows[i];
        at[k][name][j] = i;
      }
    }
    return { parts, at };
  }

  /** Pulls rows (sorted, unique per table) and all dense tensors; remembers each shard's version. */
  async pull(tables: Readonly<Record<string, Int32Array>>, dense: readonly string[]): Promise<GatheredParams> {
    return this.pullAfter(tables, dense);
  }

  /**
   * A pull that reads each shard at version ≥ `minVersions[k]` (default: any): a pull sent while
   * this trainer's previous push is still in flight (the pipelined step, ps-trainer.ts) must see
   * that push applied. A shard that answered from an older version — it served the pull before
   * the push — is asked again (counted as `repulls`), so pipelining never reads a staler row
   * than the sequential push-then-pull would.
   */
  async pullAfter(tables: Readonly<Record<string, Int32Array>>, dense: readonly string[], minVersions?: () => readonly number[] | Promise<readonly number[]>): Promise<GatheredParams> {
    const { parts, at } = this.#split(tables);
    const t0 = performance.now();
    const requests = parts.map((part, k) =>
      pullRequestCodec.encode({ job: this.#job, rank: this.#rank, tables: part, dense: this.#shards === 1 ? [...dense] : dense.filter((n) => ownerOfDense(n, this.#shards) === k) }),
    );
    this.#serdeMs += performance.now() - t0;
    const replies = await Promise.all(
      requests.map(async (req, k) => {
        // The re-pull is sent after the push was answered (so applied): once is enough, unless the
        // shard restarted from an older checkpoint meanwhile, and then its version is what it is.
        for (let attempt = 0; ; attempt++) {
          const raw = await this.#request(subjects.psPull(this.#job, k), req, k);
          const t1 = performance.now();
          const reply = decodePullReply(raw);
          this.#serdeMs += performance.now() - t1;
          if (minVersions === undefined || attempt > 0 || reply.version >= (await minVersions())[k]) return reply;
          this.#repulls++;
        }
      }),
    );
    this.#versions = replies.map((r) => r.version);
    const outTables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
    for (const [name, rows] of Object.entries(tables)) {
      if (this.#shards === 1) {
        const t = replies[0].tables[name];
        // The shard answers the rows in the order asked.
        outTables[name] = { rows, values: t === undefined ? new Float32Array(0) : t.values };
        continue;
      }
      const dim = replies.find((r) => r.tables[name] !== undefined)?.tables[name].dim ?? 1;
      const values = new Float32Array(rows.length * dim);
      // Rows came back per shard in the order sent; put them back in the requested order.
      replies.forEach((reply, k) => {
        const t = reply.tables[name];
        const pos = at[k][name];
        if (t === undefined || pos === undefined) return;
        for (let j = 0; j < pos.length; j++) values.set(t.values.subarray(j * dim, (j + 1) * dim), pos[j] * dim);
      });
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
    // The versions this push was computed from (a pipelined pull may replace #versions before it is answered).
    const versions = [...this.#versions];
    let sparseParts: Record<string, { rows: Int32Array; values: Float32Array }>[];
    if (this.#shards === 1) sparseParts = [result.sparse];
    else {
      sparseParts = Array.from({ length: this.#shards }, () => ({}) as Record<string, { rows: Int32Array; values: Float32Array }>);
      for (const [name, g] of Object.entries(result.sparse)) {
        const dim = g.rows.length === 0 ? 1 : g.values.length / g.rows.length;
        const owner = new Int32Array(g.rows.length);
        const counts = new Int32Array(this.#shards);
        for (let i = 0; i < g.rows.length; i++) counts[(owner[i] = ownerOfRow(name, g.rows[i], this.#shards))]++;
        const fill = new Int32Array(this.#shards);
        for (let k = 0; k < this.#shards; k++) if (counts[k] > 0) sparseParts[k][name] = { rows: new Int32Array(counts[k]), values: new Float32Array(counts[k] * dim) };
        for (let i = 0; i < g.rows.length; i++) {
          const k = owner[i];
          const j = fill[k]++;
          const part = sparseParts[k][name];
          part.rows[j] = g.rows[i];
          part.values.set(g.values.subarray(i * dim, (i + 1) * dim), j * dim);
        }
      }
    }
    const t0 = performance.now();
    const msgs = sparseParts.map((sparse, k) => {
      const dense = Object.fromEntries(Object.entries(result.dense).filter(([n]) => ownerOfDense(n, this.#shards) === k));
      const g = { job: this.#job, rank, step, paramVersion: versions[k], count: result.count, loss: result.loss, dense, sparse, pushId };
      return PS_WIRE_MSGPACK ? gradientCodec.encode(g) : encodeGradientFrame(g);
    });
    this.#serdeMs += performance.now() - t0;
    const raw = await Promise.all(
      msgs.map((msg, k) =>
        this.#request(subjects.psPush(this.#job, k, rank), msg, k).catch((err: unknown) => {
          if (!(err instanceof RemoteError && err.code === 'BAD_VERSION')) throw err;
          this.#dropped[k]++;
          this.#logLimited(
            `dropped:${k}`,
            `parameter shard ${k} refused a push pulled at version ${versions[k]} (BAD_VERSION: it restarted from an older checkpoint); ${this.#dropped[k]} push(es) dropped so far, the next pull catches up`,
          );
          return undefined;
        }),
      ),
    );
    const t1 = performance.now();
    const replies = raw.map((b, k): PushReply => (b === undefined ? { version: versions[k], staleness: 0, accepted: false, reason: 'BAD_VERSION' } : pushReplyCodec.decode(b)));
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
