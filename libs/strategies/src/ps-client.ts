// Trainer side of the parameter server: routes pulls and pushes to the shards that own the rows
// (ownerOfRow / ownerOfDense in ps.ts), in parallel.
import { requestLarge, type NatsConnection } from '@actorflow/bus';
import type { GatheredParams, StepResult } from '@actorflow/models';
import { gradientCodec, pullReplyCodec, pullRequestCodec, pushReplyCodec, snapshotCodec, subjects, type PushReply, type Snapshot } from '@actorflow/protocol';
import { ownerOfDense, ownerOfRow, psStatsSubject, type ShardStats } from './ps.ts';

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
      return gradientCodec.encode({ job: this.#job, rank, step, paramVersion: this.#versions[k], count: result.count, loss: result.loss, dense, sparse });
    });
    this.#serdeMs += performance.now() - t0;
    const raw = await Promise.all(msgs.map((msg, k) => requestLarge(this.#nc, subjects.psPush(this.#job, k), msg, { timeoutMs: this.#timeoutMs })));
    return raw.map((b) => pushReplyCodec.decode(b));
  }

  /** Every shard's counters (applied, dropped, rejected by reason and sender). */
  async stats(): Promise<ShardStats[]> {
    return Promise.all(
      Array.from({ length: this.#shards }, (_, k) =>
        requestLarge(this.#nc, psStatsSubject(this.#job, k), new Uint8Array(0), { timeoutMs: this.#timeoutMs }).then((b) => JSON.parse(new TextDecoder().decode(b)) as ShardStats),
      ),
    );
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
