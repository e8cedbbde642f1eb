// The star backend of ProcessGroup: rank 0 is the root. Every rank sends its contribution to
// the root; the root either returns every contribution in rank order (allGather, gather) or —
// reduce-at-root — combines them once, in rank order, and sends everyone the one result
// (allReduce with any ReduceOp, allReduceWith, broadcast, barrier): so every rank sees the same
// bytes, reductions are reproducible bit for bit, and the root sends one tensor instead of W.
// The rendezvous goes through a Store (src/store.ts, src/rendezvous.ts): by default one that rank
// 0 serves over NATS request/reply. Every rank subscribes to the group's subjects before it
// announces itself there, so no message of a later collective can be lost; each collective has a
// sequence number, so consecutive collectives never mix.
//
// Faults (broker restarts, lost messages). Every message is idempotent: a contribution is keyed by
// (rank, seq) and the root keeps the first one. A rank whose collective has no result yet resends its
// contribution when its connection reconnects and every `resendMs` (once the root has confirmed it
// holds the contribution, through a `progress` message, only a small `ask`); the root answers a contribution to
// a collective it already finished by re-sending that outcome to the asking rank alone (it keeps the
// outcomes until every rank has acknowledged them, at most KEEP_RESULTS). The ring's point-to-point
// chunks are acknowledged by their receiver and resent until they are. No wait is unbounded: a
// collective fails with CollectiveTimeoutError naming the silent ranks after `timeoutMs` without
// progress (a new contribution reaching the root; each reconnect restarts the clock too).
//
// Membership (issue 13). Every message carries its sender's rank, the job, the world size and the
// generation. The root and the members check all four against their own (and that a `down`
// message comes from the root, a contribution from a rank other than the root, a ring chunk from
// the neighbour): anything else — another job, an old or future generation, a rank that is not in
// this group — is ignored and counted in stats().rejected, never acted on. (Without per-rank
// credentials, a client that copies every field of a member's message exactly is not detected.)
//
// Generations: a group re-formed after a rank died (the launcher restarts every rank with
// generation + 1) lives on subjects of its own, so a new group never receives — or acts on — the
// old one's traffic.
//
// Subjects: <job>.coll.<group>[.g<generation>].up.<r> (from rank r to rank 0), .down (from rank 0
// to all), .down.<r> (from rank 0 to rank r), .p2p.<to>.<from> (ring neighbours), .store (the
// rendezvous store rank 0 serves). The sender's rank ends the subject of everything a member
// sends, so per-rank NATS users (libs/bus collectivePermissions) let only rank r publish as r; a
// message whose claimed rank differs from its subject's is ignored and counted (rejected.subject).
// Payloads are the validating codecs of @actorflow/protocol (collective.ts), chunked over
// max_payload by @actorflow/bus; a malformed or foreign message is counted (stats()) and ignored,
// logged at most once per LOG_EVERY_MS.
import { publishLarge, subscribeLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { collectiveDownCodec, collectiveP2pCodec, collectiveUpCodec, decodeMsg, encodeMsg, subjects, type CollectiveDown, type RingPhase } from '@actorflow/protocol';
import { CollectiveError, CollectiveTimeoutError, RendezvousError } from './errors.ts';
import { ReduceOp, asFloat32, assertReduceOp, bytesOf, reduceInRankOrder } from './reduce.ts';
import { rendezvous } from './rendezvous.ts';
import { MemoryStore, NatsStore, serveStore, type Store } from './store.ts';
import type { Combine, GroupOptions, GroupStats, ProcessGroup, RejectedStats, Work } from './types.ts';

type Outcome = Extract<CollectiveDown, { kind: 'result' | 'reduced' | 'error' }>;
type Stamp = { job: string; worldSize: number; generation?: number };

interface Waiter {
  settle(m: Outcome): void;
  /** Rank 0 says it has these contributions (others' view of progress). */
  progress(have: readonly number[]): void;
}

interface Resend {
  readonly subject: string;
  readonly bytes: Uint8Array;
  sentAt: number;
  expires: number;
  /** Sent instead of `bytes` once rank 0 confirmed it has them (a contribution can be MBs). */
  readonly ask?: Uint8Array;
  confirmed?: boolean;
}

/** Results rank 0 keeps for ranks that may ask again (fewer once every rank acknowledged them). */
const KEEP_RESULTS = 8;
/** Contributions and chunks this far ahead of a rank's own sequence are refused. */
const MAX_AHEAD = 64;
const LOG_EVERY_MS = 10_000;

export class StarProcessGroup implements ProcessGroup {
  readonly backend = 'star';
  readonly rank: number;
  readonly worldSize: number;
  readonly generation: number | undefined;
  readonly #nc: NatsConnection;
  readonly #up: string;
  readonly #down: string;
  readonly #p2pPrefix: string;
  readonly #timeoutMs: number;
  readonly #resendMs: number;
  readonly #job: string;
  readonly #name: string;
  readonly #log: (line: string) => void;
  readonly #subs: Subscription[] = [];
  #seq = 0;
  /** Every collective of this rank up to #ack has finished; #finished holds the ones above it. */
  #ack = 0;
  readonly #finished = new Set<number>();
  readonly #waiters = new Map<number, Waiter>();
  readonly #early = new Map<number, Outcome>();
  /** Re-arms every running timer (on a reconnect). */
  readonly #rearm = new Set<() => void>();
  /** Our contributions without a result (ranks ≠ 0) and ring chunks without an acknowledgement. */
  readonly #pendingUp = new Map<number, Resend>();
  readonly #unacked = new Map<string, Resend>();
  // rank 0: contributions by seq, finished outcomes by seq, each rank's acknowledged seq.
  readonly #contrib = new Map<number, Map<number, Uint8Array>>();
  readonly #done = new Map<number, Outcome>();
  readonly #acked: number[];
  /** rank 0: the combine of each reduce-at-root collective it started. */
  readonly #combiners = new Map<number, Combine>();
  /** The rendezvous store (and, on rank 0 of a default store, its server). */
  readonly #store: Store;
  readonly #storeSubject: string;
  readonly #ownStore: MemoryStore | undefined;
  // Ring traffic: chunks from the previous rank, by "seq:phase:step".
  readonly #p2p = new Map<string, Float32Array>();
  readonly #p2pWaiters = new Map<string, (v: Float32Array) => void>();
  readonly #p2pAborts = new Set<(err: Error) => void>();
  readonly #consumed = new Map<string, number>();
  #ticker: NodeJS.Timeout | undefined;
  #status: AsyncIterable<unknown> | undefined;
  #destroyed = false;
  readonly #stats = { malformed: 0, foreign: 0, duplicates: 0, resent: 0, reconnects: 0 };
  readonly #rejected = { job: 0, generation: 0, worldSize: 0, rank: 0, subject: 0 };
  readonly #options: GroupOptions;
  #loggedAt = -Infinity;
  #unlogged = 0;

  private constructor(o: GroupOptions) {
    this.#options = o;
    this.#nc = o.nc;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.generation = o.generation;
    const group = o.name ?? 'world';
    this.#job = o.job;
    this.#name = group;
    const gen = o.generation === undefined ? [] : [`g${o.generation}`];
    this.#up = subjects.collective(o.job, group, ...gen, 'up');
    this.#down = subjects.collective(o.job, group, ...gen, 'down');
    this.#p2pPrefix = subjects.collective(o.job, group, ...gen, 'p2p');
    this.#timeoutMs = o.timeoutMs ?? 30_000;
    this.#resendMs = o.resendMs ?? Math.max(20, Math.min(5000, Math.floor(this.#timeoutMs / 3)));
    this.#log = o.log ?? ((line) => console.error(line));
    this.#acked = new Array<number>(o.worldSize).fill(0);
    this.#storeSubject = subjects.collective(o.job, group, ...gen, 'store');
    this.#ownStore = o.store === undefined && o.rank === 0 ? new MemoryStore() : undefined;
    this.#store = o.store ?? this.#ownStore ?? new NatsStore(o.nc, this.#storeSubject, { timeoutMs: this.#timeoutMs });
  }

  /** Rendezvous: resolves when all worldSize ranks are present; times out naming the missing ones. */
  static async init(o: GroupOptions): Promise<StarProcessGroup> {
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw new RendezvousError(`world size must be a positive integer, got ${o.worldSize}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw new RendezvousError(`rank must be 0…${o.worldSize - 1}, got ${o.rank}`);
    if (o.generation !== undefined && (!Number.isInteger(o.generation) || o.generation < 0)) throw new RendezvousError(`generation must be an integer >= 0, got ${o.generation}`);
    if (o.resendMs !== undefined && !(o.resendMs > 0)) throw new RendezvousError(`resendMs must be positive, got ${o.resendMs}`);
    const g = new StarProcessGroup(o);
    const onError = (err: Error): void => g.#warn(`transport: ${err.message}`);
    if (g.#ownStore !== undefined) g.#subs.push(serveStore(g.#nc, g.#storeSubject, g.#ownStore, onError));
    if (g.rank === 0) g.#subs.push(subscribeLarge(g.#nc, `${g.#up}.*`, (b, msg) => g.#onUp(b, msg.subject), { onError }));
    else {
      g.#subs.push(subscribeLarge(g.#nc, g.#down, (b) => g.#onDown(b), { onError }));
      g.#subs.push(subscribeLarge(g.#nc, `${g.#down}.${g.rank}`, (b) => g.#onDown(b), { onError }));
    }
    g.#subs.push(subscribeLarge(g.#nc, `${g.#p2pPrefix}.${g.rank}.*`, (b, msg) => g.#onP2p(b, msg.subject), { onError }));
    g.#watchConnection();
    const tick = Math.max(10, Math.floor(g.#resendMs / 4));
    g.#ticker = setInterval(() => g.#resendDue(), tick);
    g.#ticker.unref();
    try {
      await g.#nc.flush();
      await rendezvous(g.#store, { job: o.job, group: g.#name, generation: o.generation, rank: o.rank, worldSize: o.worldSize, timeoutMs: g.#timeoutMs });
    } catch (err) {
      g.destroy();
      throw err;
    }
    return g;
  }

  /** What this rank ignored or repeated so far. */
  stats(): GroupStats {
    return { ...this.#stats, rejected: { ...this.#rejected } };
  }

  get #stamp(): Stamp {
    return this.generation === undefined ? { job: this.#job, worldSize: this.worldSize } : { job: this.#job, worldSize: this.worldSize, generation: this.generation };
  }

  /**
   * Whether a message comes from a member of this group (its job, generation and world size, and a
   * sender that may send it: `sender` is false for a rank that cannot have); counts and reports it if not.
   */
  #isMember(m: Stamp, what: string, claimed: number, sender: boolean): boolean {
    let reason: keyof RejectedStats | undefined;
    if (m.job !== this.#job) reason = 'job';
    else if (m.generation !== this.generation) reason = 'generation';
    else if (m.worldSize !== this.worldSize) reason = 'worldSize';
    else if (!sender) reason = 'rank';
    if (reason === undefined) return true;
    this.#rejected[reason]++;
    this.#stats.foreign++;
    this.#warn(
      `ignored a ${what} claiming to come from rank ${claimed} of job '${m.job}', generation ${m.generation ?? 'none'}, world size ${m.worldSize}` +
        ` — not a member of this group (job '${this.#job}', generation ${this.generation ?? 'none'}, world size ${this.worldSize}; wrong ${reason})`,
    );
    return false;
  }

  /**
   * Whether a message claiming rank `claimed` came on that rank's subject (the last token of
   * `up.<r>` and `p2p.<to>.<r>`, which only rank r's NATS user may publish on); counts it if not.
   */
  #fromItsSubject(claimed: number, subject: string, what: string): boolean {
    const token = subject.slice(subject.lastIndexOf('.') + 1);
    if (String(claimed) === token) return true;
    this.#rejected.subject++;
    this.#stats.foreign++;
    this.#warn(`ignored a ${what} claiming to come from rank ${claimed} on ${subject} (rank ${token}'s subject): a rank speaks only on its own subjects`);
    return false;
  }

  #warn(what: string): void {
    this.#unlogged++;
    const now = Date.now();
    if (now - this.#loggedAt < LOG_EVERY_MS) return;
    const s = this.#stats;
    this.#log(
      `[collectives] ${this.#job}/${this.#name}${this.generation === undefined ? '' : ` gen ${this.generation}`} rank ${this.rank}: ${what}` +
        ` (${this.#unlogged} event(s) since the last report; so far ${s.malformed} malformed, ${s.foreign} foreign, ${s.duplicates} duplicate(s), ${s.resent} resent)`,
    );
    this.#loggedAt = now;
    this.#unlogged = 0;
  }

  #publish(subject: string, bytes: Uint8Array): void {
    try {
      publishLarge(this.#nc, subject, bytes);
    } catch (err) {
      // A closed or failing connection: the resend (or the timeout) takes over.
      this.#warn(`could not publish on ${subject}: ${(err as Error).message}`);
    }
  }

  #watchConnection(): void {
    const status = this.#nc.status();
    this.#status = status;
    void (async () => {
      try {
        for await (const s of status) if (s.type === 'reconnect') this.#onReconnect();
      } catch {
        /* the connection closed */
      }
    })();
  }

  #onReconnect(): void {
    if (this.#destroyed) return;
    this.#stats.reconnects++;
    // Whatever was in flight may be lost: send again now, and give every wait a fresh clock.
    const now = Date.now();
    for (const r of [...this.#pendingUp.values(), ...this.#unacked.values()]) {
      r.expires = now + this.#timeoutMs;
      this.#resend(r, now);
    }
    for (const f of this.#rearm) f();
    if (this.rank !== 0 || this.worldSize === 1) return;
    // Rank 0 may have reconnected after the others, whose resends were then lost: results they
    // may lack go out again, and every rank a pending collective still misses is asked to resend.
    for (const m of this.#done.values()) this.#publish(this.#down, collectiveDownCodec.encode(m));
    for (const [seq, c] of this.#contrib) {
      this.#publish(this.#down, collectiveDownCodec.encode({ kind: 'progress', from: 0, seq, have: [...c.keys()].sort((a, b) => a - b), resend: true, ...this.#stamp }));
    }
  }

  #resend(r: Resend, now: number): void {
    r.sentAt = now;
    this.#stats.resent++;
    this.#publish(r.subject, r.confirmed === true && r.ask !== undefined ? r.ask : r.bytes);
  }

  #resendDue(): void {
    const now = Date.now();
    for (const r of this.#pendingUp.values()) if (now - r.sentAt >= this.#resendMs) this.#resend(r, now);
    for (const [key, r] of this.#unacked) {
      if (now > r.expires) this.#unacked.delete(key);
      else if (now - r.sentAt >= this.#resendMs) this.#resend(r, now);
    }
  }

  // --- rank 0 -------------------------------------------------------------------------------

  #onUp(bytes: Uint8Array, subject: string): void {
    let m;
    try {
      m = collectiveUpCodec.decode(bytes);
    } catch (err) {
      this.#stats.malformed++;
      this.#warn(`ignored a malformed message on ${subject}: ${(err as Error).message}`);
      return;
    }
    if (!this.#fromItsSubject(m.rank, subject, m.kind === 'data' ? 'contribution' : m.kind)) return;
    if (m.job !== this.#job || m.generation !== this.generation) {
      this.#isMember(m, m.kind === 'data' ? 'contribution' : m.kind, m.rank, true);
      return;
    }
    if (m.worldSize !== this.worldSize) {
      this.#isMember(m, m.kind === 'data' ? 'contribution' : m.kind, m.rank, true);
      // Told to that rank alone, in its own world size (so nobody else acts on it).
      const error = `rank ${m.rank} expects world size ${m.worldSize}, rank 0 has ${this.worldSize}: start every rank with the same --world-size`;
      this.#publish(
        `${this.#down}.${m.rank}`,
        collectiveDownCodec.encode({
          kind: 'error',
          from: 0,
          seq: m.seq,
          error,
          op: 'collective',
          job: this.#job,
          worldSize: m.worldSize,
          ...(m.generation !== undefined ? { generation: m.generation } : {}),
        }),
      );
      return;
    }
    // Rank 0 contributes locally: a contribution "from rank 0" on the bus is never its own.
    if (!this.#isMember(m, m.kind === 'data' ? 'contribution' : m.kind, m.rank, m.rank !== 0)) return;
    this.#acked[m.rank] = Math.max(this.#acked[m.rank], m.ack);
    this.#forgetAcknowledged();
    const done = this.#done.get(m.seq);
    if (done !== undefined) {
      this.#stats.duplicates++;
      this.#publish(`${this.#down}.${m.rank}`, collectiveDownCodec.encode(done));
      return;
    }
    if (this.#isFinished(m.seq)) {
      this.#stats.duplicates++;
      const error = `rank ${m.rank} contributed to #${m.seq}, which rank 0 finished long ago (a restarted rank rejoining a running group? re-form the group with a new generation)`;
      this.#publish(`${this.#down}.${m.rank}`, collectiveDownCodec.encode({ kind: 'error', from: 0, seq: m.seq, error, ...this.#stamp }));
      return;
    }
    if (m.seq > this.#seq + MAX_AHEAD) {
      this.#stats.foreign++;
      this.#warn(`ignored rank ${m.rank}'s contribution to #${m.seq}, more than ${MAX_AHEAD} ahead of rank 0 (#${this.#seq})`);
      return;
    }
    if (m.kind === 'ask') {
      // Where the collective stands; a rank not listed sends its contribution again.
      this.#stats.duplicates++;
      const have = [...(this.#contrib.get(m.seq)?.keys() ?? [])].sort((a, b) => a - b);
      this.#publish(`${this.#down}.${m.rank}`, collectiveDownCodec.encode({ kind: 'progress', from: 0, seq: m.seq, have, ...this.#stamp }));
      return;
    }
    this.#addContribution(m.seq, m.rank, m.data);
  }

  #addContribution(seq: number, rank: number, data: Uint8Array): void {
    let c = this.#contrib.get(seq);
    if (c === undefined) this.#contrib.set(seq, (c = new Map()));
    if (c.has(rank)) {
      // A resend: the first contribution stands; tell the rank where the collective is.
      this.#stats.duplicates++;
      this.#publish(`${this.#down}.${rank}`, collectiveDownCodec.encode({ kind: 'progress', from: 0, seq, have: [...c.keys()].sort((a, b) => a - b), ...this.#stamp }));
      return;
    }
    c.set(rank, data);
    if (c.size === this.worldSize) {
      const parts = Array.from({ length: this.worldSize }, (_, r) => c.get(r) as Uint8Array);
      const combine = this.#combiners.get(seq);
      if (combine === undefined) {
        this.#conclude({ kind: 'result', from: 0, seq, parts, ...this.#stamp });
        return;
      }
      // Reduce at the root: once, in rank order; everyone gets the one result.
      let reduced: Uint8Array;
      try {
        reduced = combine(parts);
      } catch (err) {
        this.#conclude({ kind: 'error', from: 0, seq, error: (err as Error).message, ...this.#stamp });
        return;
      }
      this.#conclude({ kind: 'reduced', from: 0, seq, data: reduced, ...this.#stamp });
      return;
    }
    this.#waiters.get(seq)?.progress([...c.keys()]);
    if (this.worldSize > 1) this.#publish(this.#down, collectiveDownCodec.encode({ kind: 'progress', from: 0, seq, have: [...c.keys()].sort((a, b) => a - b), ...this.#stamp }));
  }

  /** Rank 0: the outcome of `seq` for everyone, kept for ranks that may ask again. */
  #conclude(m: Outcome): void {
    this.#contrib.delete(m.seq);
    this.#combiners.delete(m.seq);
    this.#done.set(m.seq, m);
    this.#forgetAcknowledged();
    if (this.worldSize > 1) this.#publish(this.#down, collectiveDownCodec.encode(m));
    this.#deliver(m);
  }

  #forgetAcknowledged(): void {
    let all = Infinity;
    for (let r = 1; r < this.worldSize; r++) all = Math.min(all, this.#acked[r]);
    for (const seq of this.#done.keys()) if (seq <= all || this.#done.size > KEEP_RESULTS) this.#done.delete(seq);
  }

  // --- every rank ---------------------------------------------------------------------------

  #isFinished(seq: number): boolean {
    return seq <= this.#ack || this.#finished.has(seq);
  }

  #markFinished(seq: number): void {
    this.#finished.add(seq);
    while (this.#finished.has(this.#ack + 1)) this.#finished.delete(++this.#ack);
    for (const [key, s] of this.#consumed) if (s <= this.#ack) this.#consumed.delete(key);
    for (const s of this.#early.keys()) if (this.#isFinished(s)) this.#early.delete(s);
  }

  #onDown(bytes: Uint8Array): void {
    let m;
    try {
      m = collectiveDownCodec.decode(bytes);
    } catch (err) {
      this.#stats.malformed++;
      this.#warn(`ignored a malformed message from rank 0: ${(err as Error).message}`);
      return;
    }
    // Only the root speaks on these subjects.
    if (!this.#isMember(m, m.kind, m.from, m.from === 0)) return;
    switch (m.kind) {
      case 'progress': {
        const mine = this.#pendingUp.get(m.seq);
        if (mine !== undefined) {
          mine.confirmed = m.have.includes(this.rank);
          if (m.resend === true && !mine.confirmed) this.#resend(mine, Date.now());
        }
        this.#waiters.get(m.seq)?.progress(m.have);
        return;
      }
      default:
        if (m.seq === 0) {
          // No collective has sequence 0 (the rendezvous goes through the store).
          this.#stats.foreign++;
          return;
        }
        this.#deliver(m);
    }
  }

  #deliver(m: Outcome): void {
    const w = this.#waiters.get(m.seq);
    if (w !== undefined) {
      w.settle(m);
      return;
    }
    if (this.#isFinished(m.seq) || this.#early.has(m.seq)) this.#stats.duplicates++;
    else if (m.seq > this.#seq + MAX_AHEAD) this.#stats.foreign++;
    // Settled before this rank got there (e.g. rank 0 declared it failed): kept for when it does.
    else this.#early.set(m.seq, m);
  }

  #assertUsable(op: string): void {
    if (this.#destroyed) throw new CollectiveError(`${op}: the group was destroyed`);
    if (this.#nc.isClosed()) throw new CollectiveError(`${op}: the NATS connection of rank ${this.rank} is closed (create the group on an open connection)`);
  }

  /** Waits for the outcome of collective `seq`, failing after timeoutMs without progress. */
  #await(seq: number, op: string): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const early = this.#early.get(seq);
      if (early !== undefined) {
        this.#early.delete(seq);
        resolve(early);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      let have: readonly number[] | undefined;
      const finish = (m: Outcome): void => {
        clearTimeout(timer);
        this.#waiters.delete(seq);
        this.#rearm.delete(arm);
        this.#pendingUp.delete(seq);
        resolve(m);
      };
      const expire = (): void => {
        if (this.rank === 0) {
          const c = this.#contrib.get(seq);
          const missing = Array.from({ length: this.worldSize }, (_, r) => r).filter((r) => c?.has(r) !== true);
          this.#conclude({ kind: 'error', from: 0, seq, error: 'timeout', missing, op, ...this.#stamp });
        } else {
          // Rank 0 told us whom it has; without a word from it, rank 0 is the silent one.
          const missing = have === undefined ? [0] : Array.from({ length: this.worldSize }, (_, r) => r).filter((r) => !have?.includes(r));
          finish({ kind: 'error', from: 0, seq, error: 'timeout', missing: missing.length > 0 ? missing : [0], op, ...this.#stamp });
        }
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(expire, this.#timeoutMs);
      };
      this.#waiters.set(seq, {
        settle: finish,
        progress: (h) => {
          if (have !== undefined && h.length <= have.length) return;
          have = [...h];
          arm();
        },
      });
      this.#rearm.add(arm);
      arm();
    });
  }

  /** Runs collective `seq`: this rank's contribution up to the root (the root: with `combine`, a reduce-at-root). */
  async #collective(data: Uint8Array, op: string, combine?: Combine): Promise<Outcome & { kind: 'result' | 'reduced' }> {
    this.#assertUsable(op);
    const seq = ++this.#seq;
    const result = this.#await(seq, op);
    if (this.rank === 0) {
      if (combine !== undefined) this.#combiners.set(seq, combine);
      // A copy: the caller may reuse its buffer, and the contribution waits for the others.
      this.#addContribution(seq, 0, data.slice());
    } else {
      const bytes = collectiveUpCodec.encode({ kind: 'data', rank: this.rank, seq, ack: this.#ack, data, ...this.#stamp });
      const ask = collectiveUpCodec.encode({ kind: 'ask', rank: this.rank, seq, ack: this.#ack, ...this.#stamp });
      const r: Resend = { subject: `${this.#up}.${this.rank}`, bytes, ask, sentAt: Date.now(), expires: Infinity };
      this.#pendingUp.set(seq, r);
      this.#publish(r.subject, r.bytes);
    }
    const m = await result;
    this.#markFinished(seq);
    if (m.kind === 'error') {
      if (m.error === 'timeout') throw new CollectiveTimeoutError(m.missing ?? [], m.op ?? op, seq, this.#timeoutMs);
      throw new CollectiveError(`${m.op ?? op} #${seq}: ${m.error}`);
    }
    const wanted = combine === undefined ? 'result' : 'reduced';
    if (m.kind !== wanted) {
      throw new CollectiveError(
        `${op} #${seq}: rank 0 ${m.kind === 'result' ? 'gathered' : 'reduced'} where this rank ${wanted === 'result' ? 'gathered' : 'reduced'} (the ranks called different collectives; every rank must call the same ones in the same order)`,
      );
    }
    return m;
  }

  /** Every rank's bytes, in rank order, on every rank. */
  async allGather(data: Uint8Array, op = 'allGather'): Promise<Uint8Array[]> {
    const m = await this.#collective(data, op);
    return m.kind === 'result' ? m.parts : [];
  }

  /**
   * Every rank's bytes combined by `combine` on the root, once, in rank order; the one result
   * travels to every rank (one message instead of worldSize). Every rank passes the same combine.
   */
  async allReduceWith(data: Uint8Array, combine: Combine, op = 'allReduceWith'): Promise<Uint8Array> {
    const m = await this.#collective(data, op, combine);
    return m.kind === 'reduced' ? m.data : new Uint8Array(0);
  }

  /** The element-wise reduction over ranks (default SUM), reduced at the root in rank order (the same bits on every rank and in every run). */
  async allReduce(tensor: Float32Array, op: ReduceOp = ReduceOp.SUM): Promise<Float32Array> {
    assertReduceOp(op, 'allReduce');
    const out = await this.allReduceWith(bytesOf(tensor), (parts) => bytesOf(reduceInRankOrder(parts.map(asFloat32), op)), 'allReduce');
    return asFloat32(out).slice();
  }

  /**
   * Ring all-reduce (reduce-scatter, then all-gather, between neighbours): each rank sends and
   * receives 2·(W−1)/W of the tensor instead of rank 0 handling all of it. Deterministic run to
   * run (chunk c is summed starting from rank c+1, around the ring), but not in rank order, so
   * its bits may differ from the star's in the last place. Each chunk is acknowledged by its
   * receiver and resent (on a reconnect, and every resendMs) until it is.
   */
  async allReduceRing(tensor: Float32Array): Promise<Float32Array> {
    this.#assertUsable('allReduceRing');
    const seq = ++this.#seq;
    const W = this.worldSize;
    const buf = tensor.slice();
    try {
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
          const bytes = collectiveP2pCodec.encode({ kind: 'chunk', from: this.rank, seq, phase, step, data: buf.slice(a, b), ...this.#stamp });
          const r: Resend = { subject: `${this.#p2pPrefix}.${next}.${this.rank}`, bytes, sentAt: Date.now(), expires: Date.now() + this.#timeoutMs };
          this.#unacked.set(ringKey(seq, phase, step), r);
          this.#publish(r.subject, r.bytes);
          const got = await this.#receive(seq, phase, step, prev);
          const [c, d] = bounds(recvChunk);
          if (got.length !== d - c) throw new CollectiveError(`allReduceRing #${seq}: rank ${prev} sent ${got.length} values for a chunk of ${d - c} (tensors of different lengths?)`);
          for (let i = 0; i < got.length; i++) buf[c + i] = phase === 'rs' ? Math.fround(got[i] + buf[c + i]) : got[i];
        }
      }
      return buf;
    } finally {
      this.#markFinished(seq);
    }
  }

  #onP2p(bytes: Uint8Array, subject: string): void {
    let m;
    try {
      m = collectiveP2pCodec.decode(bytes);
    } catch (err) {
      this.#stats.malformed++;
      this.#warn(`ignored a malformed ring message: ${(err as Error).message}`);
      return;
    }
    if (!this.#fromItsSubject(m.from, subject, `ring ${m.kind}`)) return;
    const W = this.worldSize;
    const expected = m.kind === 'chunk' ? (this.rank - 1 + W) % W : (this.rank + 1) % W;
    if (!this.#isMember(m, `ring ${m.kind}`, m.from, m.from === expected && m.from !== this.rank)) return;
    const key = ringKey(m.seq, m.phase, m.step);
    if (m.kind === 'ack') {
      if (!this.#unacked.delete(key)) this.#stats.duplicates++;
      return;
    }
    // Acknowledge every copy (the first acknowledgement may be the one that got lost).
    this.#publish(`${this.#p2pPrefix}.${m.from}.${this.rank}`, collectiveP2pCodec.encode({ kind: 'ack', from: this.rank, seq: m.seq, phase: m.phase, step: m.step, ...this.#stamp }));
    if (this.#isFinished(m.seq) || this.#consumed.has(key) || this.#p2p.has(key)) {
      this.#stats.duplicates++;
      return;
    }
    if (m.seq > this.#seq + MAX_AHEAD) {
      this.#stats.foreign++;
      return;
    }
    const w = this.#p2pWaiters.get(key);
    if (w !== undefined) {
      this.#consumed.set(key, m.seq);
      w(m.data);
    } else this.#p2p.set(key, m.data);
  }

  #receive(seq: number, phase: RingPhase, step: number, from: number): Promise<Float32Array> {
    const key = ringKey(seq, phase, step);
    const early = this.#p2p.get(key);
    if (early !== undefined) {
      this.#p2p.delete(key);
      this.#consumed.set(key, seq);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.#p2pWaiters.delete(key);
        this.#rearm.delete(arm);
        this.#p2pAborts.delete(abort);
      };
      const abort = (err: Error): void => {
        done();
        reject(err);
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          done();
          reject(new CollectiveTimeoutError([from], 'allReduceRing', seq, this.#timeoutMs));
        }, this.#timeoutMs);
      };
      this.#p2pWaiters.set(key, (v) => {
        done();
        resolve(v);
      });
      this.#rearm.add(arm);
      this.#p2pAborts.add(abort);
      arm();
    });
  }

  #assertRoot(root: number, op: string): void {
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) throw new CollectiveError(`${op}: root must be a rank of the group (0…${this.worldSize - 1}), got ${root}`);
  }

  /** root's bytes on every rank (the root forwards only root's contribution). */
  async broadcast(data: Uint8Array, root = 0): Promise<Uint8Array> {
    this.#assertRoot(root, 'broadcast');
    return this.allReduceWith(this.rank === root ? data : new Uint8Array(0), (parts) => parts[root], 'broadcast');
  }

  async barrier(): Promise<void> {
    await this.allReduceWith(new Uint8Array(0), () => new Uint8Array(0), 'barrier');
  }

  /** The reduction over ranks on `root` (others get undefined). */
  async reduce(tensor: Float32Array, root = 0, op: ReduceOp = ReduceOp.SUM): Promise<Float32Array | undefined> {
    this.#assertRoot(root, 'reduce');
    const sum = await this.allReduce(tensor, op);
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
    const all: unknown = decodeMsg(await this.broadcast(this.rank === root ? encodeMsg(parts) : new Uint8Array(0), root), 'scatter');
    const mine = Array.isArray(all) && all.length === this.worldSize ? (all as unknown[])[this.rank] : undefined;
    if (!(mine instanceof Uint8Array)) throw new CollectiveError(`scatter: root ${root} sent no byte part for rank ${this.rank} of ${this.worldSize}`);
    return mine;
  }

  /**
   * The reduction over ranks, then rank r keeps slice r of worldSize equal slices (the last one
   * takes the remainder). (A star reduction: the ring form is not built yet.)
   */
  async reduceScatter(tensor: Float32Array, op: ReduceOp = ReduceOp.SUM): Promise<Float32Array> {
    const sum = await this.allReduce(tensor, op);
    const size = Math.floor(tensor.length / this.worldSize);
    const start = this.rank * size;
    return sum.slice(start, this.rank === this.worldSize - 1 ? tensor.length : start + size);
  }

  /**
   * A sub-group of some ranks of this group, with its own subjects; members are renumbered
   * 0…k-1 in the order given (as torch.distributed.new_group). Every member must call it with the
   * same ranks; non-members get undefined. It shares this group's generation.
   */
  async newGroup(ranks: readonly number[], name?: string): Promise<ProcessGroup | undefined> {
    if (new Set(ranks).size !== ranks.length || ranks.some((r) => !Number.isInteger(r) || r < 0 || r >= this.worldSize)) {
      throw new RendezvousError(`newGroup: ranks must be distinct ranks of this group (0…${this.worldSize - 1}), got ${ranks.join(',')}`);
    }
    const index = ranks.indexOf(this.rank);
    if (index === -1) return undefined;
    return StarProcessGroup.init({
      nc: this.#nc,
      ...(this.#options.store !== undefined ? { store: this.#options.store } : {}),
      job: this.#job,
      worldSize: ranks.length,
      rank: index,
      timeoutMs: this.#timeoutMs,
      resendMs: this.#resendMs,
      log: this.#log,
      name: name ?? `${this.#name}-${ranks.join('-')}`,
      ...(this.generation !== undefined ? { generation: this.generation } : {}),
    });
  }

  /** The asynchronous form of any collective: start it now, wait for it later. */
  start<T>(op: (g: this) => Promise<T>): Work<T> {
    const p = op(this);
    p.catch(() => undefined); // surfaced by wait()
    return { wait: () => p };
  }

  /** Leaves the group: unsubscribes, stops resending, and fails the collectives still waiting. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const s of this.#subs) s.unsubscribe();
    clearInterval(this.#ticker);
    (this.#status as { stop?: () => void } | undefined)?.stop?.();
    for (const [seq, w] of [...this.#waiters]) w.settle({ kind: 'error', from: 0, seq, error: 'the group was destroyed', ...this.#stamp });
    for (const abort of [...this.#p2pAborts]) abort(new CollectiveError('allReduceRing: the group was destroyed while waiting for a neighbour'));
    this.#pendingUp.clear();
    this.#unacked.clear();
  }
}

function ringKey(seq: number, phase: RingPhase, step: number): string {
  return `${seq}:${phase}:${step}`;
}
