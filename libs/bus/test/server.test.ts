import t from 'tap';
import { existsSync } from 'node:fs';
import { NatsServer, NatsServerNotInstalledError, NatsServerStartError, connect } from '../mod.ts';

t.test('starts two servers on free ports, connects, honours max_payload, stops', async (t) => {
  const a = await NatsServer.start({ maxPayload: 4096 });
  const b = await NatsServer.start();
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  t.not(a.port, b.port);
  t.match(a.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const nc = await connect({ servers: [a.url] });
  t.equal(nc.info?.max_payload, 4096);
  const sub = nc.subscribe('x', { max: 1 });
  nc.publish('x', new Uint8Array([1, 2, 3]));
  for await (const m of sub) t.same([...m.data], [1, 2, 3]);
  await nc.close();
  await a.stop();
  await a.stop(); // idempotent
  await t.rejects(connect({ servers: [a.url], reconnect: false, maxReconnectAttempts: 0 }));
});

t.test('JetStream store goes to a temp dir that is removed on stop', async (t) => {
  const s = await NatsServer.start({ jetstream: true });
  const nc = await connect({ servers: [s.url] });
  t.ok(nc.info?.jetstream, 'server reports JetStream');
  await nc.close();
  await s.stop();
});

t.test('a missing binary names what to install', async (t) => {
  await t.rejects(NatsServer.start({ binary: '/nonexistent/nats-server' }), NatsServerNotInstalledError);
  await t.rejects(NatsServer.start({ binary: 'no-such-nats-server-binary' }), /apt-get install -y nats-server/);
});

t.test('a server that cannot start reports its own output', async (t) => {
  await t.rejects(NatsServer.start({ config: 'this is { not valid' }), NatsServerStartError);
});

t.test('a client reconnects when the server comes back on the same port', async (t) => {
  const first = await NatsServer.start();
  const port = first.port;
  const nc = await connect({ servers: [first.url] });
  t.teardown(() => nc.close());
  await first.stop();
  const second = await NatsServer.start({ port });
  t.teardown(() => second.stop());
  const deadline = Date.now() + 10_000;
  let echoed = false;
  const sub = nc.subscribe('after.restart', { max: 1 });
  while (!echoed && Date.now() < deadline) {
    await nc.flush().catch(() => undefined);
    nc.publish('after.restart', new Uint8Array([9]));
    const got = await Promise.race([
      (async () => {
        for await (const m of sub) return m.data[0];
        return undefined;
      })(),
      new Promise((r) => setTimeout(() => r(undefined), 300)),
    ]);
    echoed = got === 9;
  }
  t.ok(echoed, 'message flows after the restart');
  t.notOk(existsSync('/nonexistent'));
});
