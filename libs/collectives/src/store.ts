// The rendezvous store, after c10d's Store: a small key-value service the ranks of a group meet
// through. MemoryStore is the data structure; serveStore answers NATS requests from one
// (rank 0 hosts it, as c10d's TCPStore); NatsStore is the client, whose every request is retried
// across broker restarts (requestWithRetry) and idempotent (set/delete by nature, add by an id
// the store remembers). Another Store (a JetStream KV bucket, etcd) slots in behind the same
// interface, passed as GroupOptions.store.
import { randomUUID } from 'node:crypto';
import { HandlerError, RetryDeadlineError, requestWithRetry, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { storeReplyCodec, storeRequestCodec, type StoreReply, type StoreRequest } from '@actorflow/protocol';
import { StoreError } from './errors.ts';

export interface Store {
  set(key: string, value: Uint8Array): Promise<void>;
  /** The value of `key`, waiting until it is set (StoreError after timeoutMs; default 30 s). */
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
  /** Adds `amount` to the integer counter `key` (created at 0) and returns the new value. */
  add(key: string, amount: number): Promise<number>;
  /** Whether every key is set, now. */
  check(keys: readonly string[]): Promise<boolean>;
  /** The keys of `keys` not set yet (a NATS-flavoured addition: rendezvous names the missing ranks). */
  missing(keys: readonly string[]): Promise<string[]>;
  /** Waits until every key is set (StoreError after timeoutMs without one appearing; default 30 s). */
  wait(keys: readonly string[], timeoutMs?: number): Promise<void>;
  /** Whether the key existed. */
  delete(key: string): Promise<boolean>;
  close(): void;
}

const POLL_MS = 25;
const REMEMBERED_ADDS = 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `missing` until nothing is missing; the clock restarts whenever a key appears. */
async function waitFor(store: Pick<Store, 'missing'>, keys: readonly string[], timeoutMs: number, onProgress?: (missing: readonly string[]) => void): Promise<void> {
  let left = await store.missing(keys);
  let progressAt = Date.now();
  while (left.length > 0) {
    if (Date.now() > progressAt + timeoutMs) throw new StoreError(`store wait: key(s) ${left.join(', ')} not set within ${timeoutMs} ms`);
    await sleep(POLL_MS);
    const now = await store.missing(keys);
    if (now.length < left.length) {
      progressAt = Date.now();
      onProgress?.(now);
    }
    left = now;
  }
}

/** An in-process store (the state behind serveStore; also usable alone, by ranks of one process). */
export class MemoryStore implements Store {
  readonly #values = new Map<string, Uint8Array>();
  readonly #adds = new Map<string, number>();

  set(key: string, value: Uint8Array): Promise<void> {
    this.#values.set(key, value.slice());
    return Promise.resolve();
  }

  /** The value now, if any. */
  peek(key: string): Uint8Array | undefined {
    return this.#values.get(key);
  }

  async get(key: string, timeoutMs = 30_000): Promise<Uint8Array> {
    await this.wait([key], timeoutMs);
    return this.#values.get(key) as Uint8Array;
  }

  /** An add with an idempotency id: the same id again returns the first answer and adds nothing. */
  addOnce(key: string, amount: number, id: string): number {
    const seen = this.#adds.get(id);
    if (seen !== undefined) return seen;
    const old = this.#values.get(key);
    const base = old === undefined ? 0 : Number(dec.decode(old));
    if (!Number.isSafeInteger(base)) throw new StoreError(`store add: key '${key}' does not hold an integer counter`);
    const next = base + amount;
    this.#values.set(key, enc.encode(String(next)));
    this.#adds.set(id, next);
    if (this.#adds.size > REMEMBERED_ADDS) this.#adds.delete(this.#adds.keys().next().value as string);
    return next;
  }

  add(key: string, amount: number): Promise<number> {
    return Promise.resolve(this.addOnce(key, amount, randomUUID()));
  }

  missing(keys: readonly string[]): Promise<string[]> {
    return Promise.resolve(keys.filter((k) => !this.#values.has(k)));
  }

  async check(keys: readonly string[]): Promise<boolean> {
    return (await this.missing(keys)).length === 0;
  }

  wait(keys: readonly string[], timeoutMs = 30_000): Promise<void> {
    return waitFor(this, keys, timeoutMs);
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.#values.delete(key));
  }

  close(): void {
    /* nothing to release */
  }
}

/** Answers StoreRequests on `subject` from `store` (a malformed request gets a BAD_REQUEST error). */
export function serveStore(nc: NatsConnection, subject: string, store: MemoryStore, onError?: (err: Error) => void): Subscription {
  return serveLarge(
    nc,
    subject,
    (payload) => {
      let req: StoreRequest;
      try {
        req = storeRequestCodec.decode(payload);
      } catch (err) {
        throw new HandlerError('BAD_REQUEST', (err as Error).message);
      }
      let reply: StoreReply;
      switch (req.op) {
        case 'set':
          void store.set(req.key, req.value);
          reply = {};
          break;
        case 'get': {
          const value = store.peek(req.key);
          reply = value === undefined ? {} : { value };
          break;
        }
        case 'add':
          try {
            reply = { count: store.addOnce(req.key, req.amount, req.id) };
          } catch (err) {
            throw new HandlerError('BAD_REQUEST', (err as Error).message);
          }
          break;
        case 'check':
          reply = { missing: req.keys.filter((k) => store.peek(k) === undefined) };
          break;
        case 'delete':
          reply = { present: store.peek(req.key) !== undefined };
          void store.delete(req.key);
          break;
      }
      return storeReplyCodec.encode(reply);
    },
    onError === undefined ? {} : { onError },
  );
}

export interface NatsStoreOptions {
  /** Bound on each request, retried over broker restarts and a server not up yet; default 30 s. */
  readonly timeoutMs?: number;
}

/** A Store served by serveStore on `subject` (by rank 0 of a group, or by any process). */
export class NatsStore implements Store {
  readonly #timeoutMs: number;

  constructor(
    readonly nc: NatsConnection,
    readonly subject: string,
    o: NatsStoreOptions = {},
  ) {
    this.#timeoutMs = o.timeoutMs ?? 30_000;
  }

  async #request(req: StoreRequest, timeoutMs = this.#timeoutMs): Promise<StoreReply> {
    let bytes: Uint8Array;
    try {
      bytes = await requestWithRetry(this.nc, this.subject, storeRequestCodec.encode(req), {
        deadlineMs: timeoutMs,
        attemptTimeoutMs: Math.min(timeoutMs, 5000),
        backoff: { initialMs: 20, maxMs: 500 },
      });
    } catch (err) {
      if (err instanceof RetryDeadlineError) throw new StoreError(`store ${this.subject}: no answer to ${req.op} within ${timeoutMs} ms (is its host, rank 0 of the group, running?)`, { cause: err });
      throw new StoreError(`store ${this.subject}: ${req.op} failed: ${(err as Error).message}`, { cause: err });
    }
    return storeReplyCodec.decode(bytes);
  }

  async set(key: string, value: Uint8Array): Promise<void> {
    await this.#request({ op: 'set', key, value });
  }

  async get(key: string, timeoutMs = this.#timeoutMs): Promise<Uint8Array> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) throw new StoreError(`store ${this.subject}: key '${key}' not set within ${timeoutMs} ms`);
      const r = await this.#request({ op: 'get', key }, left);
      if (r.value !== undefined) return r.value;
      await sleep(POLL_MS);
    }
  }

  async add(key: string, amount: number): Promise<number> {
    const r = await this.#request({ op: 'add', key, amount, id: randomUUID() });
    if (r.count === undefined) throw new StoreError(`store ${this.subject}: add '${key}' got no count back`);
    return r.count;
  }

  async missing(keys: readonly string[]): Promise<string[]> {
    const r = await this.#request({ op: 'check', keys: [...keys] });
    return r.missing ?? [];
  }

  async check(keys: readonly string[]): Promise<boolean> {
    return (await this.missing(keys)).length === 0;
  }

  wait(keys: readonly string[], timeoutMs = this.#timeoutMs): Promise<void> {
    return waitFor(this, keys, timeoutMs);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#request({ op: 'delete', key })).present === true;
  }

  close(): void {
    /* requests hold nothing between calls */
  }
}

export { waitFor };
