import t from 'tap';
import { HandlerError, LivenessTracker, NatsServer, BusTimeoutError, RemoteError, connect, publishLarge, requestLarge, serveLarge, startHeartbeat, subscribeLarge } from '../mod.ts';
import { encodeChunk, splitIntoChunks } from '@actorflow/protocol';
import { headers } from '@nats-io/nats-core';

const bytes = (n: number, salt = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + salt) & 0xff);
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

t.test('large messages over a server with a 4 KiB max_payload', async (t) => {
  const server = await NatsServer.start({ maxPayload: 4096 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });

  await t.test('publish/subscribe 1 MB', async (t) => {
    const payload = bytes(1_000_000);
    const got = new Promise<Uint8Array>((resolve) => {
      subscribeLarge(nc, 'big.pub', (p) => resolve(p));
    });
    await nc.flush();
    publishLarge(nc, 'big.pub', payload);
    t.ok(same(await got, payload));
  });

  await t.test('request/reply both ways over max_payload, through a queue group of two', async (t) => {
    const handler = (p: Uint8Array): Uint8Array => {
      const out = new Uint8Array(p.length * 2);
      out.set(p);
      out.set(p, p.length);
      return out;
    };
    const s1 = serveLarge(nc, 'big.svc', handler, { queue: 'q' });
    const nc2 = await connect({ servers: [server.url] });
    const s2 = serveLarge(nc2, 'big.svc', handler, { queue: 'q' });
    await nc.flush();
    await nc2.flush();
    for (const n of [10, 3000, 300_000]) {
      const req = bytes(n, n);
      const reply = await requestLarge(nc, 'big.svc', req, { timeoutMs: 10_000 });
      t.equal(reply.length, 2 * n);
      t.ok(same(reply.subarray(0, n), req) && same(reply.subarray(n), req), `${n} B request`);
    }
    s1.unsubscribe();
    s2.unsubscribe();
    await nc2.close();
  });

  await t.test('handler errors travel back typed; timeouts and missing services are clear', async (t) => {
    const sub = serveLarge(nc, 'err.svc', () => {
      throw new HandlerError('BAD_INPUT', 'rows out of range');
    });
    await nc.flush();
    await t.rejects(requestLarge(nc, 'err.svc', bytes(5)), RemoteError);
    await t.rejects(requestLarge(nc, 'err.svc', bytes(5)), /BAD_INPUT: rows out of range/);
    await t.rejects(requestLarge(nc, 'err.svc', bytes(100_000)), /BAD_INPUT/);
    sub.unsubscribe();
    await t.rejects(requestLarge(nc, 'nobody.here', bytes(5), { timeoutMs: 2000 }), /no service is listening on nobody.here/);
    const silent = nc.subscribe('silent.svc', { callback: () => undefined });
    await nc.flush();
    await t.rejects(requestLarge(nc, 'silent.svc', bytes(5), { timeoutMs: 300 }), BusTimeoutError);
    silent.unsubscribe();
  });

  await t.test('a missing chunk is reported, not delivered truncated', async (t) => {
    const errors: Error[] = [];
    let delivered = 0;
    subscribeLarge(nc, 'lossy', () => void delivered++, { chunkTimeoutMs: 200, onError: (e) => errors.push(e) });
    await nc.flush();
    const chunks = splitIntoChunks(bytes(10_000), 3000, 'lossy-1');
    const h = headers();
    h.set('Af-Chunked', '1');
    for (const c of chunks) if (c.index !== 2) nc.publish('lossy', encodeChunk(c), { headers: h });
    await nc.flush();
    const deadline = Date.now() + 8000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    t.equal(delivered, 0);
    t.match(errors[0]?.message ?? '', /lossy-1.*indices 2/);
  });
});

t.test('heartbeats and liveness', async (t) => {
  const server = await NatsServer.start();
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const seen: number[] = [];
  nc.subscribe('hb', { callback: (_e, m) => void seen.push(m.data[0]) });
  await nc.flush();
  const hb = startHeartbeat(nc, 'hb', () => new Uint8Array([7]), 50);
  await new Promise((r) => setTimeout(r, 220));
  hb.stop();
  t.ok(seen.length >= 3, `${seen.length} beats`);

  let now = 0;
  const tracker = new LivenessTracker<number>(() => now);
  tracker.seen(0);
  tracker.seen(1);
  now = 100;
  tracker.seen(1);
  t.same(tracker.silent(50), [0]);
  tracker.forget(0);
  t.same(tracker.members, [1]);
  t.same(tracker.silent(50), []);
});
