// Broker outages against a real nats-server: killed (SIGKILL) and restarted on the same port while
// a request is in flight or between requests; a responder that is not there yet; a server that
// never comes back. The responder dedupes by request id, as the parameter and data shards do.
import t, { type Test } from 'tap';
import type { Msg } from '@nats-io/nats-core';
import {
  ConnectionClosedError,
  ConnectionLostError,
  HandlerError,
  NatsServer,
  NoRespondersBusError,
  RemoteError,
  RetryDeadlineError,
  BusTimeoutError,
  connect,
  requestWithRetry,
  serveLarge,
  type NatsConnection,
} from '../mod.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
const dec = <T>(b: Uint8Array): T => JSON.parse(new TextDecoder().decode(b)) as T;

/** A server that can be SIGKILLed and brought back on the same port. */
class Broker {
  #server: NatsServer;
  readonly port: number;
  readonly url: string;
  private constructor(
    server: NatsServer,
    readonly maxPayload: number | undefined,
  ) {
    this.#server = server;
    this.port = server.port;
    this.url = server.url;
  }
  static async start(maxPayload?: number): Promise<Broker> {
    return new Broker(await NatsServer.start(maxPayload !== undefined ? { maxPayload } : {}), maxPayload);
  }
  async kill(): Promise<void> {
    process.kill(this.#server.pid, 'SIGKILL');
    await this.#server.exited;
    await this.#server.stop();
  }
  async restart(): Promise<void> {
    this.#server = await NatsServer.start({ port: this.port, ...(this.maxPayload !== undefined ? { maxPayload: this.maxPayload } : {}) });
  }
  stop(): Promise<void> {
    return this.#server.stop();
  }
}

interface Req {
  readonly id: string;
  readonly n: number;
  readonly pad?: string;
}

/** Applies each request id at most once; a retried id gets the first answer again. */
function dedupingResponder(nc: NatsConnection, subject: string, onCall: (calls: number) => Promise<void> | void = () => undefined): { applied: () => number; calls: () => number } {
  const answers = new Map<string, Uint8Array>();
  let applied = 0;
  let calls = 0;
  serveLarge(nc, subject, async (payload: Uint8Array, _msg: Msg) => {
    calls++;
    await onCall(calls);
    const req = dec<Req>(payload);
    const seen = answers.get(req.id);
    if (seen !== undefined) return seen;
    applied++;
    const out = enc({ id: req.id, doubled: req.n * 2, pad: req.pad ?? '' });
    answers.set(req.id, out);
    return out;
  });
  return { applied: () => applied, calls: () => calls };
}

async function pair(t: Test, broker: Broker): Promise<{ client: NatsConnection; svc: NatsConnection }> {
  const client = await connect({ servers: [broker.url] });
  const svc = await connect({ servers: [broker.url] });
  t.teardown(async () => {
    await client.close();
    await svc.close();
  });
  return { client, svc };
}

for (const size of ['small', 'chunked'] as const) {
  t.test(`${size}: the broker is killed while the request is in flight and back after 1.5 s; the request completes, applied once`, async (t) => {
    const broker = await Broker.start(size === 'chunked' ? 4096 : undefined);
    t.teardown(() => broker.stop());
    const { client, svc } = await pair(t, broker);
    let killed: () => void = () => undefined;
    const wasKilled = new Promise<void>((r) => (killed = r));
    const res = dedupingResponder(svc, 'dedupe.svc', async (calls) => {
      if (calls === 1) {
        // The reply of this first call is lost with the broker.
        await broker.kill();
        killed();
      }
    });
    await svc.flush();
    const retries: Error[] = [];
    const pad = size === 'chunked' ? 'x'.repeat(20_000) : '';
    const pending = requestWithRetry(client, 'dedupe.svc', enc({ id: 'req-1', n: 21, pad }), { attemptTimeoutMs: 60_000, deadlineMs: 90_000, onRetry: (_n, err) => retries.push(err) });
    await wasKilled;
    await sleep(1500);
    await broker.restart();
    const reply = dec<{ id: string; doubled: number; pad: string }>(await pending);
    t.equal(reply.doubled, 42, 'the answer');
    t.equal(reply.pad.length, pad.length, 'the whole reply');
    t.equal(res.applied(), 1, 'applied exactly once on the server');
    t.ok(res.calls() >= 2, `the request reached the server again after the restart (${res.calls()} calls)`);
    t.ok(
      retries.some((e) => e instanceof ConnectionLostError),
      `the attempt in flight was abandoned when the connection dropped (${retries.map((e) => e.name).join(', ')})`,
    );
    t.notOk(
      retries.some((e) => e instanceof BusTimeoutError),
      'no attempt had to wait out its timeout',
    );
  });
}

t.test('the broker is down between requests (killed, back after 2 s): the next request waits for it and completes', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const { client, svc } = await pair(t, broker);
  const res = dedupingResponder(svc, 'between.svc');
  await svc.flush();
  t.equal(dec<{ doubled: number }>(await requestWithRetry(client, 'between.svc', enc({ id: 'a', n: 1 }))).doubled, 2, 'before the outage');
  await broker.kill();
  const pending = requestWithRetry(client, 'between.svc', enc({ id: 'b', n: 2 }), { attemptTimeoutMs: 60_000, deadlineMs: 90_000 });
  await sleep(2000);
  await broker.restart();
  t.equal(dec<{ doubled: number }>(await pending).doubled, 4, 'during the outage');
  t.equal(dec<{ doubled: number }>(await requestWithRetry(client, 'between.svc', enc({ id: 'c', n: 3 }))).doubled, 6, 'after the outage');
  t.equal(res.applied(), 3, 'each id applied once');
});

t.test("a connection's very first request is made during an outage: it completes after the restart", async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const { client, svc } = await pair(t, broker);
  const res = dedupingResponder(svc, 'first.svc');
  await svc.flush();
  await broker.kill();
  const pending = requestWithRetry(client, 'first.svc', enc({ id: 'only', n: 5 }), { attemptTimeoutMs: 60_000, deadlineMs: 90_000 });
  await sleep(1000);
  await broker.restart();
  t.equal(dec<{ doubled: number }>(await pending).doubled, 10);
  t.equal(res.applied(), 1);
});

t.test('a responder that is restarting (no responders): retried with backoff until it serves', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const { client, svc } = await pair(t, broker);
  const retries: Error[] = [];
  const pending = requestWithRetry(client, 'late.svc', enc({ id: 'x', n: 4 }), { deadlineMs: 30_000, onRetry: (_n, err) => retries.push(err) });
  await sleep(700);
  dedupingResponder(svc, 'late.svc');
  await svc.flush();
  t.equal(dec<{ doubled: number }>(await pending).doubled, 8);
  t.ok(retries.length > 0 && retries.every((e) => e instanceof NoRespondersBusError), `no responders, retried ${retries.length} time(s)`);
});

t.test('the broker never comes back: a RetryDeadlineError that says what, how often and how long', async (t) => {
  const broker = await Broker.start();
  const { client, svc } = await pair(t, broker);
  dedupingResponder(svc, 'gone.svc');
  await svc.flush();
  await broker.kill();
  const err = await requestWithRetry(client, 'gone.svc', enc({ id: 'z', n: 0 }), { deadlineMs: 1500, attemptTimeoutMs: 500 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof RetryDeadlineError, `a RetryDeadlineError (${(err as Error).message})`);
  const e = err as RetryDeadlineError;
  t.equal(e.subject, 'gone.svc');
  t.ok(e.attempts >= 1, `${e.attempts} attempt(s)`);
  t.match(e.message, /gone\.svc: no answer after \d+ attempt\(s\) over \d+\.\d s .*ACTORFLOW_RETRY_DEADLINE_S.*last error: /);
});

t.test('remote errors are answers: not retried, unless the caller lists the code', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const { client, svc } = await pair(t, broker);
  let refusals = 0;
  serveLarge(svc, 'refuse.svc', () => {
    refusals++;
    throw new HandlerError('NOPE', 'refused');
  });
  let busy = 0;
  serveLarge(svc, 'busy.svc', () => {
    if (++busy < 3) throw new HandlerError('BUSY', 'try again');
    return enc('ok');
  });
  await svc.flush();
  const err = await requestWithRetry(client, 'refuse.svc', new Uint8Array(0)).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof RemoteError && err.code === 'NOPE', 'the remote error itself');
  t.equal(refusals, 1, 'asked once');
  t.equal(dec<string>(await requestWithRetry(client, 'busy.svc', new Uint8Array(0), { retryOn: ['BUSY'] })), 'ok', 'a listed code is retried');
  t.equal(busy, 3);
});

t.test('a closed connection fails at once with ConnectionClosedError', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const nc = await connect({ servers: [broker.url] });
  await nc.close();
  await t.rejects(requestWithRetry(nc, 'any.svc', new Uint8Array(0)), ConnectionClosedError);
});
