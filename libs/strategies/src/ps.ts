// The asynchronous parameter server. K aggregator processes each hold the rows r of table T with
// hash(T, r) mod K = k, and the dense tensors whose name hashes to k. Trainers pull the rows a batch
// needs from their owners, compute, and push gradient slices back with the version they pulled;
// each shard applies pushes as they come (no barrier) with the same optimizer code as the local
// reference, so one trainer and one shard reproduce single-process training exactly.
import { HandlerError, requestLarge, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { hash32 } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import type { GatheredParams, StepResult, TrainableModel } from '@actorflow/models';
import {
  gradientCodec,
  pullReplyCodec,
  pullRequestCodec,
  pushReplyCodec,
  snapshotCodec,
  subjects,
  type PulledTable,
  type PushReply,
  type Snapshot,
} from '@actorflow/protocol';
import { applyStep, createOptimizer, initParams, type ParamStore } from './params.ts';

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

  constructor(o: ParameterShardOptions) {
    this.shard = o.shard;
    this.of = o.of;
    // Every row is initialised from (seed, table, row), so the values a shard owns do not depend on K.
    this.params = initParams(o.model, o.seed);
    this.#optimizer = createOptimizer(o.optimizer);
    this.#staleness = o.staleness ?? { kind: 'none' };
  }

  get version(): number {
    return this.#version;
  }

  get stats(): { version: number; pushes: number; dropped: number } {
    return { version: this.#version, pushes: this.#pushes, dropped: this.#dropped };
  }

  #checkOwned(table: string, rows: Int32Array): void {
    const t = this.params.tables[table];
    if (t === undefined) throw new HandlerError('UNKNOWN_TABLE', `no table '${table}' on parameter shard ${this.shard}`);
    for (const r of rows) {
      if (r < 0 || r >= t.rows) throw new HandlerError('BAD_ROW', `table ${table}: row ${r} is out of range 0…${t.rows - 1}`);
      if (ownerOfRow(table, r, this.of) !== this.shard) throw new HandlerError('NOT_OWNER', `table ${table}: row ${r} belongs to shard ${ownerOfRow(table, r, this.of)}, not ${this.shard}`);
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
      const v = this.params.dense[name];
      if (v === undefined || ownerOfDense(name, this.of) !== this.shard) throw new HandlerError('NOT_OWNER', `dense '${name}' is not on shard ${this.shard}`);
      d[name] = v.slice();
    }
    return { version: this.#version, tables: out, dense: d };
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

  push(g: Pick<StepResult, 'sparse' | 'dense'>, paramVersion: number, rank = 0): PushReply {
    for (const [name, s] of Object.entries(g.sparse)) this.#checkOwned(name, s.rows);
    for (const name of Object.keys(g.dense)) {
      if (ownerOfDense(name, this.of) !== this.shard) throw new HandlerError('NOT_OWNER', `dense '${name}' is not on shard ${this.shard}`);
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
    return { version: this.#version, staleness, accepted: true };
  }

  /** The rows and dense tensors this shard owns. */
  snapshot(job: string, step: number): Snapshot {
    const tables: Record<string, PulledTable> = {};
    for (const [name, t] of Object.entries(this.params.tables)) {
      const rows: number[] = [];
      for (let r = 0; r < t.rows; r++) if (ownerOfRow(name, r, this.of) === this.shard) rows.push(r);
      tables[name] = this.pull({ [name]: Int32Array.from(rows) }, []).tables[name];
    }
    const dense: Record<string, Float32Array> = {};
    for (const name of Object.keys(this.params.dense)) if (ownerOfDense(name, this.of) === this.shard) dense[name] = this.params.dense[name].slice();
    return { job, step, version: this.#version, tables, dense };
  }
}

/** Serves a shard on `<job>.ps.<shard>.pull|push|snapshot`. */
export function servePsShard(nc: NatsConnection, job: string, ps: ParameterShard): Subscription[] {
  return [
    serveLarge(nc, subjects.psPull(job, ps.shard), async (payload) => {
      const req = pullRequestCodec.decode(payload);
      await ps.waitForTurn(req.rank);
      return pullReplyCodec.encode(ps.pull(req.tables, req.dense));
    }),
    serveLarge(nc, subjects.psPush(job, ps.shard), (payload) => {
      const g = gradientCodec.decode(payload);
      return pushReplyCodec.encode(ps.push({ sparse: g.sparse, dense: g.dense }, g.paramVersion, g.rank));
    }),
    serveLarge(nc, subjects.psSnapshot(job, ps.shard), () => snapshotCodec.encode(ps.snapshot(job, ps.version))),
  ];
}

/** Trainer side: routes pulls and pushes to the owning shards, in parallel. */
export class PsClient {
  readonly #nc: NatsConnection;
  readonly #job: string;
  readonly #shards: number;
  readonly #timeoutMs: number;
  #versions: number[];
  #serdeMs = 0;

  /** Milliseconds spent encoding requests and decoding replies since the last call (then reset). */
  takeSerdeMs(): number {
    const ms = this.#serdeMs;
    this.#serdeMs = 0;
    return ms;
  }

  readonly #rank: number;

  constructor(nc: NatsConnection, o: { job: string; shards: number; rank?: number; timeoutMs?: number }) {
    this.#nc = nc;
    this.#rank = o.rank ?? 0;
    this.#job = o.job;
    this.#shards = o.shards;
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#versions = new Array<number>(o.shards).fill(0);
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
    const raw = await Promise.all(requests.map((req, k) => requestLarge(this.#nc, subjects.psPull(this.#job, k), req, { timeoutMs: this.#timeoutMs })));
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

  /** Pushes each shard its slice of the gradient, with the version pulled from that shard. */
  async push(step: number, result: StepResult, rank: number): Promise<PushReply[]> {
    const sparseParts = Array.from({ length: this.#shards }, () => ({}) as Record<string, { rows: Int32Array; values: Float32Array }>);
    for (const [name, g] of Object.entries(result.sparse)) {
      const dim = g.rows.length === 0 ? 1 : g.values.length / g.rows.length;
      const byShard = new Map<number, number[]>();
      g.rows.forEach((r, i) => {
        const k = ownerOfRow(name, r, this.#shards);
        (byShard.get(k) ?? byShard.set(k, []).get(k) as number[]).push(i);
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
      return gradientCodec.encode({ job: this.#job, rank, step, paramVersion: this.#versions[k], count: result.count, loss: result.loss, dense, sparse });
    });
    this.#serdeMs += performance.now() - t0;
    const raw = await Promise.all(msgs.map((msg, k) => requestLarge(this.#nc, subjects.psPush(this.#job, k), msg, { timeoutMs: this.#timeoutMs })));
    return raw.map((b) => pushReplyCodec.decode(b));
  }

  /** Every shard's snapshot merged into one set of tables (for evaluation and checkpoints). */
  async snapshot(): Promise<Snapshot[]> {
    return Promise.all(
      Array.from({ length: this.#shards }, (_, k) =>
        requestLarge(this.#nc, subjects.psSnapshot(this.#job, k), new Uint8Array(0), { timeoutMs: this.#timeoutMs * 4 }).then((b) => snapshotCodec.decode(b)),
      ),
    );
  }
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
