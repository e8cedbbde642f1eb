// Requests that ride out a broker restart or a restarting server-side actor: retried with
// exponential backoff (and jitter) until a deadline, which defaults to a job-level 120 s
// (ACTORFLOW_RETRY_DEADLINE_S). Retried: timeouts, no responders (the serving actor is not
// subscribed, e.g. restarting), a connection that dropped while the request was in flight.
// Not retried: a RemoteError (the handler's real answer), unless its code is listed in `retryOn`;
// a connection closed for good.
//
// Connection-aware: one watcher per connection follows nc.status(). When the connection drops,
// every attempt in flight on it is abandoned (its reply may be lost with the old socket) and the
// next attempt waits for the reconnect, then goes at once — so a 3 s outage costs about 3 s, not
// an attempt timeout. Attempts in flight when the connection comes back are re-sent too: nats.js
// v3 discards what was published while disconnected (the outbound buffer is reset at each dial).
import { errors as natsErrors, type NatsConnection } from '@nats-io/nats-core';
import { ChunkError } from '@actorflow/protocol';
import { BusError, BusTimeoutError, ConnectionClosedError, ConnectionLostError, NoRespondersBusError, RemoteError, RetryDeadlineError } from './errors.ts';
import { requestLarge, translateNatsError } from './large.ts';

export interface Backoff {
  /** First wait after a failed attempt (default 100 ms). */
  readonly initialMs: number;
  /** Largest wait (default 2000 ms). */
  readonly maxMs: number;
  /** Growth per failed attempt (default 2). */
  readonly factor: number;
  /** Random spread, a fraction of the wait: 0.2 waits 80…120 % (default 0.2). */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 2000, factor: 2, jitter: 0.2 };

/** Default deadline of one retried request: outages up to 30 s are survived with margin. */
export const DEFAULT_RETRY_DEADLINE_MS = 120_000;

/**
 * One attempt's bound for idempotent data-path requests (pulls, pushes, batches): ACTORFLOW_ATTEMPT_TIMEOUT_S
 * if set, else `fallbackMs`. The launcher sets it short (10 s): a request held by an actor that was
 * then killed is retried after that, not after 30 s, and idempotency keys make the retry safe.
 */
export function retryAttemptMs(fallbackMs = 30_000, env: Readonly<Record<string, string | undefined>> = process.env): number {
  const raw = env.ACTORFLOW_ATTEMPT_TIMEOUT_S;
  if (raw === undefined || raw.trim() === '') return fallbackMs;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new BusError(`ACTORFLOW_ATTEMPT_TIMEOUT_S must be a positive number of seconds, got '${raw}'`);
  return s * 1000;
}

/** Longest wait for a reconnect before trying anyway (publishes are buffered while reconnecting). */
const RECONNECT_POLL_MS = 5000;

/** The job-level retry deadline: ACTORFLOW_RETRY_DEADLINE_S (seconds) if set, else 120 s. */
export function retryDeadlineMs(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const raw = env.ACTORFLOW_RETRY_DEADLINE_S;
  if (raw === undefined || raw.trim() === '') return DEFAULT_RETRY_DEADLINE_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new BusError(`ACTORFLOW_RETRY_DEADLINE_S must be a positive number of seconds, got '${raw}'`);
  return s * 1000;
}

export interface RetryOptions {
  /** Deadline relative to the call (default retryDeadlineMs(): env ACTORFLOW_RETRY_DEADLINE_S, else 120 s). */
  readonly deadlineMs?: number;
  /** Absolute deadline (Date.now() milliseconds), e.g. a job's; wins over deadlineMs. */
  readonly deadline?: number;
  /** Bound on one attempt (default 30 s; never past the deadline). */
  readonly attemptTimeoutMs?: number;
  readonly backoff?: Partial<Backoff>;
  /** RemoteError codes that are retried too (by default a remote error is an answer, not retried). */
  readonly retryOn?: readonly string[];
  /** Told before each retry: the attempt that failed (1-based) and why. */
  readonly onRetry?: (attempt: number, err: Error) => void;
}

export interface RetryingOptions extends RetryOptions {
  /** Makes the retries connection-aware (see the file comment); requestWithRetry passes its own. */
  readonly nc?: NatsConnection;
  /** What is retried, for errors (requestWithRetry: the subject). */
  readonly what?: string;
}

/** What one attempt gets: its number (1-based), its time budget and a signal aborted when it is abandoned. */
export interface Attempt {
  readonly attempt: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** True for errors worth another attempt: timeouts, no responders, lost connections (and RemoteErrors with a listed code). */
export function isRetryable(err: unknown, retryOn: readonly string[] = []): boolean {
  if (err instanceof RemoteError) return retryOn.includes(err.code);
  if (err instanceof ConnectionClosedError || err instanceof RetryDeadlineError) return false;
  if (err instanceof BusTimeoutError || err instanceof NoRespondersBusError || err instanceof ConnectionLostError || err instanceof ChunkError) return true;
  // nats.js errors that reach here untranslated (a caller's own fn): timeouts, no responders, disconnects.
  const translated = translateNatsError(err, '', 0);
  if (translated !== err) return isRetryable(translated, retryOn);
  return err instanceof natsErrors.ConnectionError || err instanceof natsErrors.RequestError;
}

interface InFlight {
  readonly what: string;
  readonly ctrl: AbortController;
}

/** Follows one connection's status: connected or not, and the attempts in flight on it. */
class ConnectionWatch {
  connected = true;
  closed = false;
  /** Date.now() of the last drop, while disconnected. */
  downSince: number | undefined;
  readonly inflight = new Set<InFlight>();
  readonly #waiters = new Set<() => void>();

  constructor(nc: NatsConnection) {
    this.closed = nc.isClosed();
    // nats.js clears the server info while it reconnects.
    this.connected = !this.closed && nc.info !== undefined;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          this.downSince = Date.now();
          this.#abandon((what) => new ConnectionLostError(what, 'disconnect'));
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.downSince = undefined;
          this.#abandon((what) => new ConnectionLostError(what, 'reconnect'));
          this.#wake();
        } else if (s.type === 'close') {
          this.#closed();
          return;
        }
      }
    })()
      .catch(() => undefined)
      .finally(() => this.#closed());
    void nc.closed().then(() => this.#closed());
  }

  #closed(): void {
    this.closed = true;
    this.#abandon((what) => new ConnectionClosedError(what));
    this.#wake();
  }

  #abandon(reason: (what: string) => Error): void {
    for (const f of this.inflight) f.ctrl.abort(reason(f.what));
    this.inflight.clear();
  }

  #wake(): void {
    for (const w of this.#waiters) w();
    this.#waiters.clear();
  }

  /** Resolves on reconnect or close, or after `maxMs`. */
  waitConnected(maxMs: number): Promise<void> {
    if (this.connected || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, maxMs));
      this.#waiters.add(done);
    });
  }
}

const watches = new WeakMap<NatsConnection, ConnectionWatch>();

function watchOf(nc: NatsConnection): ConnectionWatch {
  let w = watches.get(nc);
  if (w === undefined) {
    w = new ConnectionWatch(nc);
    watches.set(nc, w);
  }
  return w;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function toError(err: unknown): Error {
  return err instanceof Error ? err : new BusError(String(err));
}

/**
 * Runs `fn` until it succeeds, a non-retryable error, or the deadline (then RetryDeadlineError
 * naming what, the attempts, the time spent and the last error). Each attempt is bounded by
 * attemptTimeoutMs: its signal is aborted with a BusTimeoutError and the attempt abandoned.
 */
export async function retrying<T>(fn: (a: Attempt) => Promise<T>, opts: RetryingOptions = {}): Promise<T> {
  const what = opts.what ?? 'request';
  const start = Date.now();
  const deadline = opts.deadline ?? start + (opts.deadlineMs ?? retryDeadlineMs());
  const attemptTimeoutMs = opts.attemptTimeoutMs ?? 30_000;
  const backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  const watch = opts.nc !== undefined ? watchOf(opts.nc) : undefined;
  let delay = backoff.initialMs;
  let lastError: Error = new BusError(`${what}: the deadline passed before the first attempt`);
  for (let attempt = 1; ; attempt++) {
    if (watch !== undefined && !watch.connected && !watch.closed) await watch.waitConnected(Math.min(RECONNECT_POLL_MS, deadline - Date.now()));
    if (watch?.closed === true && opts.nc?.isClosed() === true) throw new ConnectionClosedError(what, { cause: lastError });
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      const down = watch?.downSince;
      const why =
        down !== undefined ? new BusError(`the NATS connection has been down for ${((Date.now() - down) / 1000).toFixed(1)} s (still reconnecting; before that: ${lastError.message})`) : lastError;
      throw new RetryDeadlineError(what, attempt - 1, Date.now() - start, why);
    }
    const timeoutMs = Math.max(1, Math.min(attemptTimeoutMs, remaining));
    const ctrl = new AbortController();
    const entry: InFlight = { what, ctrl };
    watch?.inflight.add(entry);
    const timer = setTimeout(() => ctrl.abort(new BusTimeoutError(what, timeoutMs)), timeoutMs);
    try {
      const abandoned = new Promise<never>((_, reject) => {
        if (ctrl.signal.aborted) reject(toError(ctrl.signal.reason));
        ctrl.signal.addEventListener('abort', () => reject(toError(ctrl.signal.reason)), { once: true });
      });
      abandoned.catch(() => undefined);
      const run = fn({ attempt, timeoutMs, signal: ctrl.signal });
      // An abandoned attempt may still settle later; its outcome is ignored.
      run.catch(() => undefined);
      return await Promise.race([run, abandoned]);
    } catch (err) {
      const e = toError(err);
      if (!isRetryable(e, opts.retryOn)) throw e;
      lastError = e;
      if (Date.now() >= deadline) throw new RetryDeadlineError(what, attempt, Date.now() - start, e);
      opts.onRetry?.(attempt, e);
      if (e instanceof ConnectionLostError) {
        // After a drop the next attempt waits for the reconnect (loop top); after a reconnect it goes now.
        delay = backoff.initialMs;
        continue;
      }
      const jittered = delay * (1 + backoff.jitter * (2 * Math.random() - 1));
      await sleep(Math.min(jittered, deadline - Date.now()));
      delay = Math.min(backoff.maxMs, delay * backoff.factor);
    } finally {
      clearTimeout(timer);
      watch?.inflight.delete(entry);
      if (!ctrl.signal.aborted) ctrl.abort(new BusError(`${what}: attempt finished`));
    }
  }
}

export interface RequestWithRetryOptions extends RetryOptions {
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * requestLarge retried across broker restarts and restarting responders (see the file comment).
 * Only for requests that are idempotent, or made so with an idempotency key the server dedupes.
 */
export function requestWithRetry(nc: NatsConnection, subject: string, payload: Uint8Array, opts: RequestWithRetryOptions = {}): Promise<Uint8Array> {
  return retrying(({ timeoutMs, signal }) => requestLarge(nc, subject, payload, { timeoutMs, signal, ...(opts.headers !== undefined ? { headers: opts.headers } : {}) }), {
    ...opts,
    nc,
    what: subject,
  });
}
