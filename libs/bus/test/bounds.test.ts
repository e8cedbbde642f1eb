// serveLarge bounds memory: an upload announcing more than maxRequestBytes is refused at the
// handshake (TOO_LARGE, before any chunk is held); requests without a reply subject are counted.
import t from 'tap';
import { NatsServer, RemoteError, RequestTooLargeError, connect, requestLarge, serveLarge } from '../mod.ts';
import { headers } from '@nats-io/nats-core';

t.test('upload bounds and requests without a reply subject, on a real nats-server', async (t) => {
  const server = await NatsServer.start({ maxPayload: 4096 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const errors: Error[] = [];
  let handled = 0;
  let noReply = 0;
  serveLarge(
    nc,
    'bound.svc',
    (p) => {
      handled++;
      return p.subarray(0, 4);
    },
    { maxRequestBytes: 100_000, onError: (e) => errors.push(e), onNoReply: () => noReply++ },
  );
  await nc.flush();
  const ok = await requestLarge(nc, 'bound.svc', new Uint8Array(50_000).fill(7), { timeoutMs: 10_000 });
  t.same([...ok], [7, 7, 7, 7], 'an upload within the bound is served');

  const err = await requestLarge(nc, 'bound.svc', new Uint8Array(200_000), { timeoutMs: 10_000 }).catch((e: unknown) => e);
  t.ok(err instanceof RemoteError, 'an upload over the bound is refused');
  t.equal((err as RemoteError).code, 'TOO_LARGE');
  t.match((err as Error).message, /above the limit of 100000 B/);

  // A forged handshake announcing 4 GiB: refused at once, nothing held.
  const h = headers();
  h.set('Af-Upload', String(4 * 1024 ** 3));
  const reply = await nc.request('bound.svc', new Uint8Array(0), { headers: h, timeout: 5000 });
  t.equal(reply.headers?.get('Af-Error'), 'TOO_LARGE');
  t.ok(
    errors.some((e) => e instanceof RequestTooLargeError && e.message.includes('4294967296')),
    'reported to onError as a RequestTooLargeError',
  );

  const before = handled;
  nc.publish('bound.svc', new Uint8Array([1, 2, 3]));
  nc.publish('bound.svc', new Uint8Array([1, 2, 3]));
  await nc.flush();
  await requestLarge(nc, 'bound.svc', new Uint8Array(8), { timeoutMs: 5000 }); // ordered after the two publishes
  t.equal(noReply, 2, 'two requests without a reply subject counted');
  t.equal(handled, before + 1, 'and not handled');
});
