// A process group over NATS (star topology: rank 0 coordinates). Every rank subscribes to the
// group's subjects before it announces itself, so no message of a later collective can be lost;
// each collective has a sequence number, so consecutive collectives never mix. Rank 0 gathers the
// contributions of a collective, and sends everyone the same answer — so every rank sees the
// same bytes, and reductions happen in rank order (reproducible bit for bit).
//
// Subjects: <job>.coll.<group>.up (to rank 0) and <job>.coll.<group>.down (from rank 0), payloads
// msgpack (typed arrays binary), chunked over max_payload by @actorflow/bus.
import { publishLarge, subscribeLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { decodeMsg, encodeMsg, subjects } from '@actorflow/protocol';

export class CollectiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CollectiveError';
  }
}

/** A rank stayed silent past the timeout; the message names it, the operation and its sequence. */
export class CollectiveTimeoutError extends CollectiveError {
  constructor(
    readonly missing: readonly number[],
    readonly op: string,
    readonly seq: number,
    timeoutMs: number,
  ) {
    super(`${op} #${seq}: rank(s) ${missing.join(', ')} sent nothing within ${timeoutMs} ms (crashed, stuck or never started?)`);
    this.name = 'CollectiveTimeoutError';
  }
}

export class RendezvousError extends CollectiveError {
  constructor(message: string) {
    super(message);
    this.name = 'RendezvousError';
  }
}

interface UpMsg {
  readonly kind: 'hello' | 'data';
  readonly rank: number;
  readonly seq: number;
  readonly worldSize: number;
  readonly data?: Uint8Array;
}

interface DownMsg {
  readonly kind: 'welcome' | 'result' | 'error';
  readonly seq: number;
  readonly parts?: Uint8Array[];
  readonly error?: string;
  readonly missing?: number[];
  readonly op?: string;
}

export interface GroupOptions {
  readonly nc: NatsConnection;
  readonly job: string;
  readonly worldSize: number;
  readonly rank: number;
  /** Per collective (and for the rendezvous); default 30 s. */
  readonly timeoutMs?: number;
  readonly name?: string;
}

type Waiter = { resolve: (m: DownMsg) => void };

/** A started collective (the async form): `await work.wait()` for its result. */
export interface Work<T> {
  wait(): Promise<T>;
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly #nc: NatsConnection;
  readonly #up: string;
  readonly #down: string;
  readonly #timeoutMs: number;
  readonly #job: string;
  readonly #name: string;
  readonly #subs: Subscription[] = [];
  #seq = 0;
  // rank 0: contributions by seq; everyone: results by seq.
  readonly #contrib = new Map<number, Map<number, Uint8Array>>();
  readonly #results = new Map<number, DownMsg>();
  readonly #waiters = new Map<number, Waiter>();
  readonly #hellos = new Set<number>();
  // Ring traffic: point-to-point messages from the previous rank, by "seq:phase:step".
  readonly #p2p = new Map<string, Float32Array>();
  readonly #p2pWaiters = new Map<string, (v: Float32Array) => void>();
  readonly #p2pPrefix: string;
  #welcomed = false;

  private constructor(o: GroupOptions) {
    this.#nc = o.nc;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    const group = o.name ?? 'world';
    this.#job = o.job;
    this.#name = group;
    this.#up = subjects.collective(o.job, group, 'up');
    this.#down = subjects.collective(o.job, group, 'down');
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#p2pPrefix = subjects.collective(o.job, group, 'p2p');
  }

  /** Rendezvous: resolves when all worldSize ranks are present; times out naming the missing ones. */
  static async init(o: GroupOptions): Promise<ProcessGroup> {
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw new RendezvousError(`world size must be a positive integer, got ${o.worldSize}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw new RendezvousError(`rank must be 0…${o.worldSize - 1}, got ${o.rank}`);
    const g = new ProcessGroup(o);
    g.#subs.push(subscribeLarge(g.#nc, g.#down, (b) => g.#onDown(decodeMsg(b) as DownMsg)));
    if (g.rank === 0) g.#subs.push(subscribeLarge(g.#nc, g.#up, (b) => g.#onUp(decodeMsg(b) as UpMsg)));
    g.#subs.push(
      subscribeLarge(g.#nc, `${g.#p2pPrefix}.${g.rank}`, (b) => {
        const m = decodeMsg(b) as { key: string; data: Float32Array };
        const w = g.#p2pWaiters.get(m.key);
        if (w !== undefined) {
          g.#p2pWaiters.delete(m.key);
          w(m.data);
        } else g.#p2p.set(m.key, m.data);
      }),
    );
    await g.#nc.flush();
    await g.#rendezvous();
    return g;
  }

  async #rendezvous(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    if (this.rank === 0) {
      this.#hellos.add(0);
      while (this.#hellos.size < this.worldSize) {
        if (Date.now() > deadline) {
          const missing = Array.from({ length: this.worldSize }, (_, r) => r).filter((r) => !this.#hellos.has(r));
          throw new CollectiveTimeoutError(missing, 'rendezvous', 0, this.#timeoutMs);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      publishLarge(this.#nc, this.#down, encodeMsg({ kind: 'welcome', seq: 0 } satisfies DownMsg));
      return;
    }
    // Announce until rank 0 answers: it may start after us.
    while (!this.#welcomed) {
      if (Date.now() > deadline) throw new CollectiveTimeoutError([0], 'rendezvous', 0, this.#timeoutMs);
      publishLarge(this.#nc, this.#up, encodeMsg({ kind: 'hello', rank: this.rank, seq: 0, worldSize: this.worldSize } satisfies UpMsg));
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  #onUp(m: UpMsg): void {
    if (m.worldSize !== this.worldSize) {
      this.#broadcastError(m.seq, `rank ${m.rank} expects world size ${m.worldSize}, rank 0 has ${this.worldSize}`, [m.rank], m.kind);
      return;
    }
    if (m.kind === 'hello') {
      this.#hellos.add(m.rank);
      // A late hello after the welcome (a restarted rank) gets the welcome again.
      if (this.#hellos.size >= this.worldSize) publishLarge(this.#nc, this.#down, encodeMsg({ kind: 'welcome', seq: 0 } satisfies DownMsg));
      return;
    }
    this.#addContribution(m.seq, m.rank, m.data ?? new Uint8Array(0));
  }

  #addContribution(seq: number, rank: number, data: Uint8Array): void {
    let c = this.#contrib.get(seq);
    if (c === undefined) this.#contrib.set(seq, (c = new Map()));
    c.set(rank, data);
    if (c.size === this.worldSize) {
      this.#contrib.delete(seq);
      const parts = Array.from({ length: this.worldSize }, (_, r) => c.get(r) as Uint8Array);
      publishLarge(this.#nc, this.#down, encodeMsg({ kind: 'result', seq, parts } satisfies DownMsg));
    }
  }

  #broadcastError(seq: number, error: string, missing: number[], op: string): void {
    publishLarge(this.#nc, this.#down, encodeMsg({ kind: 'error', seq, error, missing, op } satisfies DownMsg));
  }

  #onDown(m: DownMsg): void {
    if (m.kind === 'welcome') {
      this.#welcomed = true;
      return;
    }
    const w = this.#waiters.get(m.seq);
    if (w !== undefined) {
      this.#waiters.delete(m.seq);
      w.resolve(m);
    } else this.#results.set(m.seq, m);
  }

  /** Every rank's bytes, in rank order, on every rank (the building block of the others). */
  async allGather(data: Uint8Array, op = 'allGather'): Promise<Uint8Array[]> {
    const seq = ++this.#seq;
    const result = new Promise<DownMsg>((resolve) => {
      const early = this.#results.get(seq);
      if (early !== undefined) {
        this.#results.delete(seq);
        resolve(early);
      } else this.#waiters.set(seq, { resolve });
    });
    if (this.rank === 0) this.#addContribution(seq, 0, data);
    else publishLarge(this.#nc, this.#up, encodeMsg({ kind: 'data', rank: this.rank, seq, worldSize: this.worldSize, data } satisfies UpMsg));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<DownMsg>((resolve) => {
      timer = setTimeout(() => {
        if (this.rank === 0) {
          const have = this.#contrib.get(seq);
          const missing = Array.from({ length: this.worldSize }, (_, r) => r).filter((r) => have?.has(r) !== true);
          this.#contrib.delete(seq);
          this.#broadcastError(seq, 'timeout', missing, op);
          resolve({ kind: 'error', seq, error: 'timeout', missing, op });
        } else resolve({ kind: 'error', seq, error: 'timeout', missing: [0], op });
      }, this.#timeoutMs);
    });
    const m = await Promise.race([result, timeout]);
    clearTimeout(timer);
    this.#waiters.delete(seq);
    if (m.kind === 'error') {
      if (m.error === 'timeout') throw new CollectiveTimeoutError(m.missing ?? [], m.op ?? op, seq, this.#timeoutMs);
      throw new CollectiveError(`${m.op ?? op} #${seq}: ${m.error ?? 'failed'}`);
    }
    return m.parts ?? [];
  }

  /** Sum over ranks, added in rank order (so every run and every rank get the same bits). */
  async allReduce(tensor: Float32Array): Promise<Float32Array> {
    const parts = await this.allGather(new Uint8Array(tensor.buffer, tensor.byteOffset, tensor.byteLength), 'allReduce');
    const out = new Float32Array(tensor.length);
    for (const p of parts) {
      if (p.byteLength !== tensor.byteLength) throw new CollectiveError(`allReduce: ranks passed tensors of different lengths (${p.byteLength / 4} vs ${tensor.length})`);
      const v = new Float32Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.byteLength));
      for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i] + v[i]);
    }
    return out;
  }

  /**
   * Ring all-reduce (reduce-scatter, then all-gather, between neighbours): each rank sends and
   * receives 2·(W−1)/W of the tensor instead of rank 0 handling all of it. Deterministic run to
   * run (chunk c is summed starting from rank c+1, around the ring), but not in rank order, so
   * its bits may differ from the star's in the last place.
   */
  async allReduceRing(tensor: Float32Array): Promise<Float32Array> {
    const seq = ++this.#seq;
    const W = this.worldSize;
    const buf = tensor.slice();
    if (W === 1) return buf;
    const size = Math.floor(buf.length / W);
    const bounds = (c: number): [number, number] => [c * size, c === W - 1 ? buf.length : (c + 1) * size];
    const next = (this.rank + 1) % W;
    const prev = (this.rank - 1 + W) % W;
    const mod = (x: number): number => ((x % W) + W) % W;
    for (const phase of ['rs', 'ag'] as const) {
      for (let step = 0; step < W - 1; step++) {
        const sendChunk = phase === 'rs' ? mod(this.rank - step) : mod(this.rank + 1 - step);
        const recvChunk = phase === 'rs' ? mod(this.rank - step - 1) : mod(this.rank - step);
        const [a, b] = bounds(sendChunk);
        publishLarge(this.#nc, `${this.#p2pPrefix}.${next}`, encodeMsg({ key: `${seq}:${phase}:${step}`, data: buf.slice(a, b) }));
        const got = await this.#receive(`${seq}:${phase}:${step}`, prev, seq);
        const [c, d] = bounds(recvChunk);
        if (got.length !== d - c) throw new CollectiveError(`allReduceRing #${seq}: rank ${prev} sent ${got.length} values for a chunk of ${d - c} (tensors of different lengths?)`);
        for (let i = 0; i < got.length; i++) buf[c + i] = phase === 'rs' ? Math.fround(got[i] + buf[c + i]) : got[i];
      }
    }
    return buf;
  }

  #receive(key: string, from: number, seq: number): Promise<Float32Array> {
    const early = this.#p2p.get(key);
    if (early !== undefined) {
      this.#p2p.delete(key);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#p2pWaiters.delete(key);
        reject(new CollectiveTimeoutError([from], 'allReduceRing', seq, this.#timeoutMs));
      }, this.#timeoutMs);
      this.#p2pWaiters.set(key, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
    });
  }

  /** root's bytes on every rank. */
  async broadcast(data: Uint8Array, root = 0): Promise<Uint8Array> {
    const parts = await this.allGather(this.rank === root ? data : new Uint8Array(0), 'broadcast');
    return parts[root];
  }

  async barrier(): Promise<void> {
    await this.allGather(new Uint8Array(0), 'barrier');
  }

  /** Sum over ranks on `root` (others get undefined). */
  async reduce(tensor: Float32Array, root = 0): Promise<Float32Array | undefined> {
    const sum = await this.allReduce(tensor);
    return this.rank === root ? sum : undefined;
  }

  /** Every rank's bytes on `root` (others get undefined). */
  async gather(data: Uint8Array, root = 0): Promise<Uint8Array[] | undefined> {
    const parts = await this.allGather(data, 'gather');
    return this.rank === root ? parts : undefined;
  }

  /** `root` hands rank r its `parts[r]`. */
  async scatter(parts: readonly Uint8Array[] | undefined, root = 0): Promise<Uint8Array> {
    if (this.rank === root && (parts === undefined || parts.length !== this.worldSize)) {
      throw new CollectiveError(`scatter: root needs ${this.worldSize} parts, got ${parts?.length ?? 0}`);
    }
    const all = decodeMsg(await this.broadcast(this.rank === root ? encodeMsg(parts) : new Uint8Array(0), root)) as Uint8Array[];
    return all[this.rank];
  }

  /**
   * Sum over ranks, then rank r keeps slice r of worldSize equal slices (the last one takes the
   * remainder). (A star reduction: the ring form is not built yet.)
   */
  async reduceScatter(tensor: Float32Array): Promise<Float32Array> {
    const sum = await this.allReduce(tensor);
    const size = Math.floor(tensor.length / this.worldSize);
    const start = this.rank * size;
    return sum.slice(start, this.rank === this.worldSize - 1 ? tensor.length : start + size);
  }

  /**
   * A sub-group of some ranks of this group, with its own subjects; members are renumbered
   * 0…k-1 in the order given (as torch.distributed.new_group). Every member must call it with the
   * same ranks; non-members get undefined.
   */
  async newGroup(ranks: readonly number[], name?: string): Promise<ProcessGroup | undefined> {
    if (new Set(ranks).size !== ranks.length || ranks.some((r) => !Number.isInteger(r) || r < 0 || r >= this.worldSize)) {
      throw new RendezvousError(`newGroup: ranks must be distinct ranks of this group (0…${this.worldSize - 1}), got ${ranks.join(',')}`);
    }
    const index = ranks.indexOf(this.rank);
    if (index === -1) return undefined;
    return ProcessGroup.init({ nc: this.#nc, job: this.#job, worldSize: ranks.length, rank: index, timeoutMs: this.#timeoutMs, name: name ?? `${this.#name}-${ranks.join('-')}` });
  }

  /** The asynchronous form of any collective: start it now, wait for it later. */
  start<T>(op: (g: this) => Promise<T>): Work<T> {
    const p = op(this);
    p.catch(() => undefined); // surfaced by wait()
    return { wait: () => p };
  }

  destroy(): void {
    for (const s of this.#subs) s.unsubscribe();
  }
}
