// The asynchronous parameter server. K aggregator processes each hold the rows r of table T with
// hash(T, r) mod K = k, and the dense tensors whose name hashes to k. Trainers pull the rows a batch
// needs from their owners, compute, and push gradient slices back with the version they pulled;
// each shard applies pushes as they come (no barrier) with the same optimizer code as the local
// reference, so one trainer and one shard reproduce single-process training exactly.
import { HandlerError, RequestTooLargeError, serveLarge, type NatsConnection, type ServeLargeOptions, type Subscription } from '@actorflow/bus';
import { hash32 } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import type { StepResult, TrainableModel } from '@actorflow/models';
import {
  decodeGradient,
  encodePullReplyFrameFrom,
  pullReplyCodec,
  pullRequestCodec,
  pushReplyCodec,
  shardStateCodec,
  snapshotCodec,
  subjects,
  SHARD_STATE_FORMAT,
  type OptimizerSlotState,
  type OwnedTableState,
  type PulledTable,
  type PushReply,
  type ShardState,
  type Snapshot,
} from '@actorflow/protocol';
import { applyStep, createOptimizer, initParams, type ParamStore } from './params.ts';
import { firstNonFinite } from './guards.ts';

/** Owner shard of a table row / dense tensor: stable across processes and machines. */
export function ownerOfRow(table: string, row: number, shards: number): number {
  let h = 0;
  for (let i = 0; i < table.length; i++) h = (Math.imul(h, 31) + table.charCodeAt(i)) | 0;
  return hash32(row ^ h) % shards;
}

export function ownerOfDense(name: string, shards: number): number {
  return ownerOfRow(`dense:${name}`, 0, shards);
}

export type StalenessPolicy =
  | { readonly kind: 'none' }
  | { readonly kind: 'drop'; readonly max: number }
  | { readonly kind: 'scale' }
  /** SSP: a trainer more than `max` clocks (pushes) ahead of the slowest live trainer waits at pull. */
  | { readonly kind: 'bound'; readonly max: number };

export function parseStaleness(spec: string): StalenessPolicy {
  if (spec === 'none') return { kind: 'none' };
  if (spec === 'scale') return { kind: 'scale' };
  const m = /^(drop|bound):(\d+)$/.exec(spec);
  if (m !== null) return { kind: m[1] as 'drop' | 'bound', max: Number(m[2]) };
  throw new Error(`unknown staleness policy '${spec}'; use none, scale (lr / (1 + staleness)), drop:N or bound:N (SSP)`);
}

/** A trainer that has not pushed for this long no longer holds the others back under SSP. */
export const SSP_LIVENESS_MS = 5000;

export interface ParameterShardOptions {
  readonly model: TrainableModel<unknown>;
  readonly shard: number;
  readonly of: number;
  readonly seed: number;
  readonly optimizer: OptimizerConfig;
  readonly staleness?: StalenessPolicy;
  /** Where rejections are logged (default: stderr), at most one line per reason per `logIntervalMs` (default 5 s). */
  readonly log?: (line: string) => void;
  readonly logIntervalMs?: number;
  /** Clock for the log rate limit (tests). */
  readonly now?: () => number;
  /** A state from exportState() (a checkpoint part) to start from instead of the initial parameters; see restoreState. */
  readonly restore?: Uint8Array;
}

/** Push ids (and their replies) a shard remembers to answer retried pushes without applying them twice. */
export const PUSH_ID_MEMORY = 1024;

/** A shard state that cannot be restored into this shard (another shard, model or optimizer); nothing was changed. */
export class ShardStateError extends Error {
  constructor(
    readonly shard: number,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(
      `parameter shard ${shard}: cannot restore the checkpointed state: ${detail}; restore each shard from its own part of a checkpoint of the same job (same model, optimizer and shard count)`,
      options,
    );
    this.name = 'ShardStateError';
  }
}

/** Why a push was rejected; also the error code the pusher receives. */
export type PushRejectReason = 'UNKNOWN_TABLE' | 'UNKNOWN_DENSE' | 'NOT_OWNER' | 'BAD_ROW' | 'DUPLICATE_ROW' | 'BAD_SHAPE' | 'NON_FINITE' | 'BAD_VERSION' | 'BAD_SENDER' | 'MALFORMED' | 'TOO_LARGE';

/** A push refused whole (nothing of it applied); travels to the pusher as a remote error with code `reason`. */
export class PushRejected extends HandlerError {
  constructor(
    readonly reason: PushRejectReason,
    /** The sender's rank as the push claims it. */
    readonly rank: number,
    readonly shard: number,
    readonly detail: string,
  ) {
    super(reason, `push from rank ${rank} rejected by parameter shard ${shard} (${reason}): ${detail}; nothing of it was applied`);
    this.name = 'PushRejected';
  }
}

export interface ShardStats {
  readonly shard: number;
  readonly version: number;
  /** Pushes applied. */
  readonly pushes: number;
  /** Pushes dropped by the staleness policy (valid, but too stale). */
  readonly dropped: number;
  /** Pushes rejected as invalid, in all and by reason. */
  readonly rejected: number;
  readonly rejectedByReason: Partial<Record<PushRejectReason, number>>;
  /** Per sender rank (as claimed by the push): applied and rejected-by-reason counts. */
  readonly bySender: Readonly<Record<string, { readonly accepted: number; readonly rejected: Partial<Record<PushRejectReason, number>> }>>;
  /** Requests that arrived without a reply subject. */
  readonly noReply: number;
  /** Pushes whose pushId was already applied (answered with the first reply, nothing applied). */
  readonly duplicates: number;
}

/** Subject of a shard's stats (JSON ShardStats). */
export function psStatsSubject(job: string, shard: number): string {
  return subjects.psStats(job, shard);
}

export class ParameterShard {
  readonly shard: number;
  readonly of: number;
  readonly params: ParamStore;
  #version = 0;
  #pushes = 0;
  #dropped = 0;
  readonly #optimizer;
  readonly #staleness: StalenessPolicy;
  /** SSP clocks: pushes applied per trainer rank, and when each was last seen. */
  readonly #clocks = new Map<number, { clock: number; seen: number }>();
  readonly #rejected: Partial<Record<PushRejectReason, number>> = {};
  readonly #senders = new Map<number, { accepted: number; rejected: Partial<Record<PushRejectReason, number>> }>();
  readonly #logged = new Map<string, { at: number; since: number }>();
  #noReply = 0;
  #duplicates = 0;
  /** Replies of the last PUSH_ID_MEMORY pushes that carried an id, oldest first. */
  readonly #replies = new Map<string, PushReply>();
  /** Per table, one byte per row: the duplicate check's marks (all zero between pushes). */
  readonly #marks = new Map<string, Uint8Array>();
  /** Rows of each table this shard owns, ascending (computed once). */
  readonly #owned = new Map<string, Int32Array>();
  readonly #log: (line: string) => void;
  readonly #logIntervalMs: number;
  readonly #now: () => number;

  constructor(o: ParameterShardOptions) {
    this.shard = o.shard;
    this.of = o.of;
    // Every row is initialised from (seed, table, row), so the values a shard owns do not depend on K.
    this.params = initParams(o.model, o.seed);
    this.#optimizer = createOptimizer(o.optimizer);
    this.#staleness = o.staleness ?? { kind: 'none' };
    this.#log = o.log ?? ((line) => console.error(`[ps ${o.shard}/${o.of}] ${line}`));
    this.#logIntervalMs = o.logIntervalMs ?? 5000;
    this.#now = o.now ?? Date.now;
    if (o.restore !== undefined) this.restoreState(o.restore);
  }

  /** Bytes of all parameters (every table and dense tensor of the model). */
  get paramBytes(): number {
    let n = 0;
    for (const t of Object.values(this.params.tables)) n += t.data.byteLength;
    for (const v of Object.values(this.params.dense)) n += v.byteLength;
    return n;
  }

  get version(): number {
    return this.#version;
  }

  /** Applied and dropped pushes, rejections by reason and by sender rank, requests without a reply subject. */
  get stats(): ShardStats {
    const rejectedTotal = Object.values(this.#rejected).reduce((a, b) => a + b, 0);
    const bySender: Record<string, { accepted: number; rejected: Partial<Record<PushRejectReason, number>> }> = {};
    for (const [rank, s] of this.#senders) bySender[String(rank)] = { accepted: s.accepted, rejected: { ...s.rejected } };
    return {
      shard: this.shard,
      version: this.#version,
      pushes: this.#pushes,
      dropped: this.#dropped,
      rejected: rejectedTotal,
      rejectedByReason: { ...this.#rejected },
      bySender,
      noReply: this.#noReply,
      duplicates: this.#duplicates,
    };
  }

  #checkOwned(table: string, rows: Int32Array): void {
    const t = Object.hasOwn(this.params.tables, table) ? this.params.tables[table] : undefined;
    if (t === undefined) throw new HandlerError('UNKNOWN_TABLE', `no table '${table}' on parameter shard ${this.shard}`);
    for (const r of rows) {
      if (r < 0 || r >= t.rows) throw new HandlerError('BAD_ROW', `table ${table}: row ${r} is out of range 0…${t.rows - 1}`);
      if (this.of > 1 && ownerOfRow(table, r, this.of) !== this.shard)
        throw new HandlerError('NOT_OWNER', `table ${table}: row ${r} belongs to shard ${ownerOfRow(table, r, this.of)}, not ${this.shard}`);
    }
  }

  pull(tables: Readonly<Record<string, Int32Array>>, dense: readonly string[]): { version: number; tables: Record<string, PulledTable>; dense: Record<string, Float32Array> } {
    const out: Record<string, PulledTable> = {};
    for (const [name, rows] of Object.entries(tables)) {
      this.#checkOwned(name, rows);
      const t = this.params.tables[name];
      const values = new Float32Array(rows.length * t.dim);
      for (let i = 0; i < rows.length; i++) values.set(t.data.subarray(rows[i] * t.dim, (rows[i] + 1) * t.dim), i * t.dim);
      out[name] = { rows, values, dim: t.dim };
    }
    const d: Record<string, Float32Array> = {};
    for (const name of dense) {
      const v = Object.hasOwn(this.params.dense, name) ? this.params.dense[name] : undefined;
      if (v === undefined) throw new HandlerError('UNKNOWN_DENSE', `no dense tensor '${name}' in this model`);
      if (ownerOfDense(name, this.of) !== this.shard) throw new HandlerError('NOT_OWNER', `dense '${name}' is not on shard ${this.shard}`);
      d[name] = v.slice();
    }
    return { version: this.#version, tables: out, dense: d };
  }

  /** `pull` encoded as a row frame, the rows gathered straight from the tables into it (what servePsShard answers). */
  pullFrame(tables: Readonly<Record<string, Int32Array>>, dense: readonly string[]): Uint8Array {
    const blocks = Object.entries(tables).map(([name, rows]) => {
      this.#checkOwned(name, rows);
      const t = this.params.tables[name];
      return { name, rows, dim: t.dim, source: t.data };
    });
    return encodePullReplyFrameFrom(this.#version, blocks, this.pull({}, dense).dense);
  }

  /**
   * SSP: resolves when `rank` may pull — when it is at most `max` clocks ahead of the slowest
   * trainer still pushing. Other policies resolve at once. A trainer never waits past
   * `maxWaitMs` (it goes on and the wait is reported), so a stuck peer cannot stall the job.
   */
  async waitForTurn(rank: number, maxWaitMs = 30_000): Promise<{ waitedMs: number }> {
    if (this.#staleness.kind !== 'bound') return { waitedMs: 0 };
    const started = Date.now();
    for (;;) {
      const now = Date.now();
      const mine = this.#clocks.get(rank)?.clock ?? 0;
      let slowest = mine;
      for (const [r, c] of this.#clocks) if (r !== rank && now - c.seen < SSP_LIVENESS_MS) slowest = Math.min(slowest, c.clock);
      if (mine - slowest <= this.#staleness.max || now - started >= maxWaitMs) return { waitedMs: now - started };
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Applies one gradient push — or none of it: the whole push is validated first (tables, dense
   * names, owners, row ranges, duplicate rows, shapes, finite values, version ≤ current), and a
   * bad push is rejected with a PushRejected (counted by reason and by sender, logged at a
   * bounded rate) before any byte of the parameters changes.
   *
   * `pushId` makes the push idempotent: a push with an id seen among the last PUSH_ID_MEMORY is
   * answered with the reply it got the first time and applies nothing (counted as a duplicate).
   * Ids are remembered per sender rank, so no rank can pre-empt another's.
   *
   * `subjectRank`: the rank of the subject the push came on (`<job>.ps.<k>.push.<r>`, which only
   * rank r's NATS user may publish on); a push claiming another rank is rejected (BAD_SENDER).
   */
  push(g: Pick<StepResult, 'sparse' | 'dense'>, paramVersion: number, rank = 0, pushId?: string, subjectRank?: number): PushReply {
    if (subjectRank !== undefined && subjectRank !== rank) {
      const err = new PushRejected('BAD_SENDER', rank, this.shard, `the push claims rank ${rank} but came on rank ${subjectRank}'s subject (a rank pushes only on <job>.ps.<shard>.push.<its rank>)`);
      this.#countRejected(err);
      throw err;
    }
    const key = pushId === undefined ? undefined : `${rank}|${pushId}`;
    if (key !== undefined) {
      const seen = this.#replies.get(key);
      if (seen !== undefined) {
        this.#duplicates++;
        return seen;
      }
    }
    const reply = this.#push(g, paramVersion, rank);
    if (key !== undefined) {
      this.#replies.set(key, reply);
      if (this.#replies.size > PUSH_ID_MEMORY) this.#replies.delete(this.#replies.keys().next().value as string);
    }
    return reply;
  }

  #push(g: Pick<StepResult, 'sparse' | 'dense'>, paramVersion: number, rank: number): PushReply {
    try {
      this.#validatePush(g, paramVersion, rank);
    } catch (err) {
      if (err instanceof PushRejected) this.#countRejected(err);
      throw err;
    }
    const staleness = Math.max(0, this.#version - paramVersion);
    if (this.#staleness.kind === 'drop' && staleness > this.#staleness.max) {
      this.#dropped++;
      return { version: this.#version, staleness, accepted: false, reason: `staleness ${staleness} > ${this.#staleness.max}` };
    }
    applyStep(this.params, this.#optimizer, g, this.#staleness.kind === 'scale' ? 1 / (1 + staleness) : 1);
    this.#clocks.set(rank, { clock: (this.#clocks.get(rank)?.clock ?? 0) + 1, seen: Date.now() });
    this.#pushes++;
    this.#version++;
    this.#sender(rank).accepted++;
    return { version: this.#version, staleness, accepted: true };
  }

  #validatePush(g: Pick<StepResult, 'sparse' | 'dense'>, paramVersion: number, rank: number): void {
    const reject = (reason: PushRejectReason, what: string): never => {
      throw new PushRejected(reason, rank, this.shard, what);
    };
    if (!Number.isSafeInteger(rank) || rank < 0) reject('BAD_SENDER', `sender rank ${rank} is not a non-negative integer`);
    if (!Number.isSafeInteger(paramVersion) || paramVersion < 0 || paramVersion > this.#version) {
      reject('BAD_VERSION', `paramVersion ${paramVersion} is not an integer in 0…${this.#version} (this shard's current version); a push must carry the version it pulled`);
    }
    for (const [name, s] of Object.entries(g.sparse)) {
      const t = Object.hasOwn(this.params.tables, name) ? this.params.tables[name] : undefined;
      if (t === undefined) reject('UNKNOWN_TABLE', `no table '${name}' on parameter shard ${this.shard} (tables: ${Object.keys(this.params.tables).join(', ')})`);
      const table = t as NonNullable<typeof t>;
      if (!(s.rows instanceof Int32Array) || !(s.values instanceof Float32Array)) reject('BAD_SHAPE', `table ${name}: rows must be an Int32Array and values a Float32Array`);
      if (s.values.length !== s.rows.length * table.dim) {
        reject('BAD_SHAPE', `table ${name}: ${s.values.length} values for ${s.rows.length} rows of dim ${table.dim} (expected ${s.rows.length * table.dim})`);
      }
      // Duplicates: a mark per row of the table, kept between pushes and cleared after each check.
      let seen = this.#marks.get(name);
      if (seen === undefined) this.#marks.set(name, (seen = new Uint8Array(table.rows)));
      const rows = s.rows;
      let checked = 0;
      try {
        for (; checked < rows.length; checked++) {
          const r = rows[checked];
          if (r < 0 || r >= table.rows) reject('BAD_ROW', `table ${name}: row ${r} is out of range 0…${table.rows - 1}`);
          if (this.of > 1) {
            const owner = ownerOfRow(name, r, this.of);
            if (owner !== this.shard) reject('NOT_OWNER', `table ${name}: row ${r} belongs to shard ${owner}, not ${this.shard}`);
          }
          if (seen[r] !== 0) reject('DUPLICATE_ROW', `table ${name}: row ${r} appears more than once in one push (gradients must be deduplicated)`);
          seen[r] = 1;
        }
      } finally {
        for (let i = 0; i < checked; i++) seen[rows[i]] = 0;
      }
      const bad = firstNonFinite(s.values);
      if (bad !== undefined) reject('NON_FINITE', `table ${name}: gradient of row ${s.rows[Math.floor(bad.index / table.dim)]} is ${bad.value}`);
    }
    for (const [name, v] of Object.entries(g.dense)) {
      const p = Object.hasOwn(this.params.dense, name) ? this.params.dense[name] : undefined;
      if (p === undefined) reject('UNKNOWN_DENSE', `no dense tensor '${name}' in this model (dense: ${Object.keys(this.params.dense).join(', ') || 'none'})`);
      const owner = ownerOfDense(name, this.of);
      if (owner !== this.shard) reject('NOT_OWNER', `dense '${name}' belongs to shard ${owner}, not ${this.shard}`);
      if (!(v instanceof Float32Array) || v.length !== (p as Float32Array).length) {
        reject('BAD_SHAPE', `dense '${name}': ${v instanceof Float32Array ? v.length : typeof v} values, expected a Float32Array of ${(p as Float32Array).length}`);
      }
      const bad = firstNonFinite(v);
      if (bad !== undefined) reject('NON_FINITE', `dense '${name}': gradient element ${bad.index} is ${bad.value}`);
    }
  }

  #sender(rank: number): { accepted: number; rejected: Partial<Record<PushRejectReason, number>> } {
    const key = Number.isSafeInteger(rank) && rank >= 0 ? rank : -1;
    let s = this.#senders.get(key);
    if (s === undefined) this.#senders.set(key, (s = { accepted: 0, rejected: {} }));
    return s;
  }

  #countRejected(err: PushRejected): void {
    this.#rejected[err.reason] = (this.#rejected[err.reason] ?? 0) + 1;
    const s = this.#sender(err.rank);
    s.rejected[err.reason] = (s.rejected[err.reason] ?? 0) + 1;
    // At most one line per reason per interval, with how many were rejected since the last line.
    const now = this.#now();
    const l = this.#logged.get(err.reason) ?? { at: -Infinity, since: 0 };
    l.since++;
    if (now - l.at >= this.#logIntervalMs) {
      this.#log(`rejected push from rank ${err.rank}: ${err.reason}: ${err.detail}${l.since > 1 ? ` (${l.since} ${err.reason} rejections since the last such line)` : ''}`);
      l.at = now;
      l.since = 0;
    }
    this.#logged.set(err.reason, l);
  }

  /** A push whose bytes do not decode (sender unknown): counted as MALFORMED under sender -1. */
  countMalformed(detail: string): void {
    this.#countRejected(new PushRejected('MALFORMED', -1, this.shard, detail));
  }

  /** An upload refused at its handshake for announcing more than maxRequestBytes (sender unknown: the handshake carries only a size): TOO_LARGE under sender -1. */
  countTooLarge(detail: string): void {
    this.#countRejected(new PushRejected('TOO_LARGE', -1, this.shard, detail));
  }

  /** A request that arrived without a reply subject (it cannot be answered): counted, logged at a bounded rate. */
  countNoReply(subject: string): void {
    this.#noReply++;
    const now = this.#now();
    const l = this.#logged.get('NO_REPLY') ?? { at: -Infinity, since: 0 };
    l.since++;
    if (now - l.at >= this.#logIntervalMs) {
      this.#log(`ignored a message on ${subject} without a reply subject (${l.since} since the last such line, ${this.#noReply} in all)`);
      l.at = now;
      l.since = 0;
    }
    this.#logged.set('NO_REPLY', l);
  }

  /** The rows of `table` this shard owns, ascending. */
  ownedRows(table: string): Int32Array {
    let rows = this.#owned.get(table);
    if (rows === undefined) {
      const t = this.params.tables[table];
      const out: number[] = [];
      for (let r = 0; r < t.rows; r++) if (ownerOfRow(table, r, this.of) === this.shard) out.push(r);
      rows = Int32Array.from(out);
      this.#owned.set(table, rows);
    }
    return rows;
  }

  /** The rows and dense tensors this shard owns. */
  snapshot(job: string, step: number): Snapshot {
    const tables: Record<string, PulledTable> = {};
    for (const name of Object.keys(this.params.tables)) tables[name] = this.pull({ [name]: this.ownedRows(name) }, []).tables[name];
    const dense: Record<string, Float32Array> = {};
    for (const name of Object.keys(this.params.dense)) if (ownerOfDense(name, this.of) === this.shard) dense[name] = this.params.dense[name].slice();
    return { job, step, version: this.#version, tables, dense };
  }

  /**
   * Everything a restarted shard needs to continue exactly where this one is: the owned rows and
   * dense tensors, their optimizer state (moments and per-row update counts), the version, the
   * push counters and the SSP clocks — a ShardState (shardStateCodec), copied, so training may go on.
   */
  exportState(): Uint8Array {
    const tables: Record<string, OwnedTableState> = {};
    for (const [name, t] of Object.entries(this.params.tables)) {
      const owned = this.ownedRows(name);
      tables[name] = { rows: t.rows, dim: t.dim, owned, values: this.pull({ [name]: owned }, []).tables[name].values };
    }
    const dense: Record<string, Float32Array> = {};
    for (const name of Object.keys(this.params.dense)) if (ownerOfDense(name, this.of) === this.shard) dense[name] = this.params.dense[name].slice();
    const slots: Record<string, OptimizerSlotState> = {};
    for (const [name, s] of Object.entries(this.#optimizer.state())) {
      if (name.startsWith('dense:')) {
        if (Object.hasOwn(dense, name.slice('dense:'.length))) slots[name] = { m: s.m.slice(), v: s.v.slice(), steps: s.steps.slice() };
        continue;
      }
      const t = this.params.tables[name];
      if (t === undefined) continue;
      const owned = tables[name].owned;
      const dim = t.dim;
      const m = new Float32Array(owned.length * dim);
      const v = new Float32Array(owned.length * dim);
      const steps = new Int32Array(owned.length);
      for (let i = 0; i < owned.length; i++) {
        const r = owned[i];
        m.set(s.m.subarray(r * dim, (r + 1) * dim), i * dim);
        v.set(s.v.subarray(r * dim, (r + 1) * dim), i * dim);
        steps[i] = s.steps[r];
      }
      slots[name] = { m, v, steps };
    }
    const clocks: Record<string, number> = {};
    for (const [rank, c] of this.#clocks) clocks[String(rank)] = c.clock;
    const state: ShardState = {
      format: SHARD_STATE_FORMAT,
      shard: this.shard,
      of: this.of,
      optimizer: this.#optimizer.config.name,
      version: this.#version,
      pushes: this.#pushes,
      dropped: this.#dropped,
      tables,
      dense,
      slots,
      clocks,
    };
    return shardStateCodec.encode(state);
  }

  /**
   * Loads a state from exportState() (a checkpoint part) into this shard. Everything is checked
   * first — shard index and count, optimizer, table names and shapes, owned rows, dense tensors —
   * and a mismatch throws a ShardStateError naming it before anything changes. Continuing from
   * the restored state is bit-identical to never having stopped.
   */
  restoreState(bytes: Uint8Array): void {
    let st: ShardState;
    try {
      st = shardStateCodec.decode(bytes);
    } catch (err) {
      throw new ShardStateError(this.shard, (err as Error).message, { cause: err });
    }
    const fail = (detail: string): never => {
      throw new ShardStateError(this.shard, detail);
    };
    if (st.shard !== this.shard || st.of !== this.of) fail(`the state is of shard ${st.shard} of ${st.of}, this is shard ${this.shard} of ${this.of}`);
    if (st.optimizer !== this.#optimizer.config.name) fail(`the state's optimizer is ${st.optimizer}, this shard's is ${this.#optimizer.config.name}`);
    const names = (o: object): string => Object.keys(o).sort().join(', ');
    if (names(st.tables) !== names(this.params.tables)) fail(`the state has tables [${names(st.tables)}], the model [${names(this.params.tables)}]`);
    for (const [name, s] of Object.entries(st.tables)) {
      const t = this.params.tables[name];
      if (s.rows !== t.rows || s.dim !== t.dim) fail(`table ${name} is ${s.rows} × ${s.dim} in the state, ${t.rows} × ${t.dim} in the model`);
      const owned = this.ownedRows(name);
      if (s.owned.length !== owned.length || s.owned.some((r, i) => r !== owned[i])) fail(`table ${name}: the state holds ${s.owned.length} rows, not the ${owned.length} this shard owns`);
    }
    const ownedDense = Object.keys(this.params.dense).filter((n) => ownerOfDense(n, this.of) === this.shard);
    if (names(st.dense) !== [...ownedDense].sort().join(', ')) fail(`the state has dense tensors [${names(st.dense)}], this shard owns [${[...ownedDense].sort().join(', ')}]`);
    for (const [name, v] of Object.entries(st.dense))
      if (v.length !== this.params.dense[name].length) fail(`dense ${name} has ${v.length} values in the state, ${this.params.dense[name].length} in the model`);
    // Checked: now apply. Optimizer slots are whole-parameter sized; rows this shard does not own keep their initial state.
    const slots: Record<string, { m: Float32Array; v: Float32Array; steps: Int32Array }> = {};
    for (const [name, s] of Object.entries(st.slots)) {
      if (name.startsWith('dense:')) {
        slots[name] = { m: s.m.slice(), v: s.v.slice(), steps: s.steps.slice() };
        continue;
      }
      const t = this.params.tables[name];
      const owned = st.tables[name].owned;
      const dim = t.dim;
      const m = new Float32Array(t.data.length);
      const v = new Float32Array(t.data.length);
      if (this.#optimizer.config.name === 'adagrad') v.fill(this.#optimizer.config.initialAccumulator);
      const steps = new Int32Array(t.rows);
      for (let i = 0; i < owned.length; i++) {
        const r = owned[i];
        m.set(s.m.subarray(i * dim, (i + 1) * dim), r * dim);
        v.set(s.v.subarray(i * dim, (i + 1) * dim), r * dim);
        steps[r] = s.steps[i];
      }
      slots[name] = { m, v, steps };
    }
    for (const [name, s] of Object.entries(st.tables)) {
      const t = this.params.tables[name];
      for (let i = 0; i < s.owned.length; i++) t.data.set(s.values.subarray(i * t.dim, (i + 1) * t.dim), s.owned[i] * t.dim);
    }
    for (const [name, v] of Object.entries(st.dense)) this.params.dense[name].set(v);
    this.#optimizer.loadState(slots);
    this.#version = st.version;
    this.#pushes = st.pushes;
    this.#dropped = st.dropped;
    // Pushes remembered since the state was taken are undone by the restore: their retries must apply again.
    this.#replies.clear();
    this.#clocks.clear();
    const now = Date.now();
    for (const [rank, clock] of Object.entries(st.clocks)) this.#clocks.set(Number(rank), { clock, seen: now });
  }
}

/** Serves a shard on `<job>.ps.<shard>.pull|push|snapshot|state|stats`. */
export function servePsShard(nc: NatsConnection, job: string, ps: ParameterShard, opts: Pick<ServeLargeOptions, 'maxRequestBytes'> = {}): Subscription[] {
  // A push carries at most every owned row's gradient (values and row ids): bound requests by the model's size.
  const maxRequestBytes = opts.maxRequestBytes ?? Math.max(8 * 1024 * 1024, 3 * ps.paramBytes);
  const common = (subject: string): ServeLargeOptions => ({
    maxRequestBytes,
    onNoReply: () => ps.countNoReply(subject),
    onError: (err) => (err instanceof RequestTooLargeError ? ps.countTooLarge(err.message) : console.error(`[bus] ${subject}: ${err.message}`)),
  });
  return [
    serveLarge(
      nc,
      subjects.psPull(job, ps.shard),
      async (payload) => {
        const req = pullRequestCodec.decode(payload);
        await ps.waitForTurn(req.rank);
        // ACTORFLOW_PS_WIRE=msgpack: the older msgpack reply (before/after benchmarks); PsClient decodes either.
        return process.env.ACTORFLOW_PS_WIRE === 'msgpack' ? pullReplyCodec.encode(ps.pull(req.tables, req.dense)) : ps.pullFrame(req.tables, req.dense);
      },
      common(subjects.psPull(job, ps.shard)),
    ),
    serveLarge(
      nc,
      subjects.psPushAny(job, ps.shard),
      (payload, _msg, subject) => {
        const token = subject.slice(subject.lastIndexOf('.') + 1);
        const subjectRank = /^\d{1,9}$/.test(token) ? Number(token) : -1;
        let g;
        try {
          g = decodeGradient(payload);
        } catch (err) {
          ps.countMalformed((err as Error).message);
          throw new HandlerError('MALFORMED', (err as Error).message);
        }
        return pushReplyCodec.encode(ps.push({ sparse: g.sparse, dense: g.dense }, g.paramVersion, g.rank, g.pushId, subjectRank));
      },
      common(subjects.psPushAny(job, ps.shard)),
    ),
    serveLarge(nc, subjects.psSnapshot(job, ps.shard), () => snapshotCodec.encode(ps.snapshot(job, ps.version)), common(subjects.psSnapshot(job, ps.shard))),
    serveLarge(nc, subjects.psState(job, ps.shard), () => ps.exportState(), common(subjects.psState(job, ps.shard))),
    serveLarge(nc, psStatsSubject(job, ps.shard), () => new TextEncoder().encode(JSON.stringify(ps.stats)), common(psStatsSubject(job, ps.shard))),
  ];
}

/** Merges shard snapshots into full parameters (rows a shard never had stay as initialised). */
export function mergeSnapshots(model: TrainableModel<unknown>, seed: number, snapshots: readonly Snapshot[]): ParamStore {
  const store = initParams(model, seed);
  for (const s of snapshots) {
    for (const [name, t] of Object.entries(s.tables)) {
      const table = store.tables[name];
      t.rows.forEach((r, i) => table.data.set(t.values.subarray(i * t.dim, (i + 1) * t.dim), r * t.dim));
    }
    for (const [name, v] of Object.entries(s.dense)) store.dense[name] = v.slice();
  }
  return store;
}
