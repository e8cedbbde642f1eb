// Heartbeats over a real nats-server: every actor registered as a service beats on
// <job>.hb.<actor>; a beat never throws, not even while the connection drains (an actor finishing).
import t from 'tap';
import { heartbeatCodec } from '@actorflow/protocol';
import { NatsServer, connect, registerActorService, startHeartbeat } from '../mod.ts';

t.test('a registered actor beats on <job>.hb.<actor> with its name and pid', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const actor = await connect({ servers: [server.url] });
  const watcher = await connect({ servers: [server.url] });
  t.teardown(async () => Promise.all([actor, watcher].map((nc) => (nc.isClosed() ? undefined : nc.close()))));
  const got = new Promise<ReturnType<typeof heartbeatCodec.decode>>((resolve) => {
    watcher.subscribe('hb-job.hb.*', { callback: (_e, m) => resolve(heartbeatCodec.decode(m.data)) });
  });
  await watcher.flush();
  const svc = await registerActorService(actor, { role: 'trainer', job: 'hb-job', rank: 3, heartbeatMs: 50, actor: 'trainer-3' });
  const hb = await got;
  t.match(hb, { job: 'hb-job', role: 'trainer', actor: 'trainer-3', rank: 3, pid: process.pid });
  await svc.stop();
});

t.test('a heartbeat while the connection drains or after it closed is skipped, never thrown', async (t) => {
  // A unit test with a stand-in connection: nats.js throws DrainingConnectionError from publish
  // during a drain, a window too short to hit reliably with a real one.
  let state: 'open' | 'draining' | 'closed' | 'broken' = 'open';
  let published = 0;
  const nc = {
    isClosed: () => state === 'closed',
    isDraining: () => state === 'draining',
    publish: () => {
      if (state !== 'open') throw new Error(`connection ${state}`);
      published++;
    },
  } as unknown as Parameters<typeof startHeartbeat>[0];
  const hb = startHeartbeat(nc, 'x.hb.a', () => new Uint8Array(1), 5);
  t.equal(published, 1, 'the first beat is immediate');
  for (const s of ['draining', 'closed', 'broken'] as const) {
    state = s;
    await new Promise((r) => setTimeout(r, 20)); // several beats in this state: none may throw
  }
  hb.stop();
  t.equal(published, 1, 'nothing was published while draining, closed or broken');
});
