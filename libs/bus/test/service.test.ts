// Actors as NATS services, over a real nats-server: $SRV.PING / INFO / STATS list each actor with
// its role, job and rank, and its live stats; a stopped actor drops out of the list.
import t from 'tap';
import { ACTOR_SERVICE_NAME, NatsServer, actorServiceStats, connect, listActorServices, registerActorService } from '../mod.ts';

t.test('two actors answer $SRV.INFO / PING / STATS with role, job, rank and live stats', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const a = await connect({ servers: [server.url] });
  const b = await connect({ servers: [server.url] });
  const watcher = await connect({ servers: [server.url] });
  t.same(await listActorServices(watcher, { timeoutMs: 300 }), [], 'no actor at all: an empty list, not an error');
  t.same(await actorServiceStats(watcher, { timeoutMs: 300 }), []);
  t.teardown(async () => {
    await Promise.all([a, b, watcher].map((nc) => (nc.isClosed() ? undefined : nc.close())));
  });
  let pushes = 0;
  const agg = await registerActorService(a, { role: 'aggregator', job: 'job-a', rank: 0, stats: () => ({ pushes }) });
  await registerActorService(b, { role: 'trainer', job: 'job-b', rank: '1,2' });
  pushes = 7;

  const infos = await listActorServices(watcher);
  const byRole = new Map(infos.map((i) => [i.metadata?.role, i]));
  t.equal(infos.length, 2, 'both actors listed');
  t.same(byRole.get('aggregator')?.metadata, { role: 'aggregator', job: 'job-a', rank: '0', pid: String(process.pid) });
  t.same(byRole.get('trainer')?.metadata, { role: 'trainer', job: 'job-b', rank: '1,2', pid: String(process.pid) });
  t.equal(byRole.get('trainer')?.name, ACTOR_SERVICE_NAME);
  t.same(
    (await listActorServices(watcher, { job: 'job-b' })).map((i) => i.metadata?.role),
    ['trainer'],
    'filter by job',
  );

  // The raw protocol, as `nats req '$SRV.PING' ''` would see it.
  const ping = JSON.parse(new TextDecoder().decode((await watcher.request(`$SRV.PING.${ACTOR_SERVICE_NAME}`, '', { timeout: 2000 })).data)) as { type: string; name: string };
  t.equal(ping.type, 'io.nats.micro.v1.ping_response');
  t.equal(ping.name, ACTOR_SERVICE_NAME);

  const stats = await actorServiceStats(watcher, { job: 'job-a' });
  t.equal(stats.length, 1);
  const data = stats[0]?.endpoints?.[0]?.data as Record<string, unknown>;
  t.equal(data.role, 'aggregator');
  t.equal(data.job, 'job-a');
  t.equal(data.pushes, 7, 'the actor’s own live number');
  t.type(data.outMsgs, 'number');

  const status = JSON.parse(new TextDecoder().decode((await watcher.request(agg.statusSubject, '', { timeout: 2000 })).data)) as Record<string, unknown>;
  t.equal(status.pushes, 7);
  t.match(agg.statusSubject, /^actorflow\.status\.job-a\.aggregator\.\w+$/);

  await agg.stop();
  await agg.stop();
  t.same(
    (await listActorServices(watcher)).map((i) => i.metadata?.role),
    ['trainer'],
    'a stopped actor is gone',
  );
  await b.close();
  t.same(await listActorServices(watcher, { timeoutMs: 300 }), [], 'a closed connection takes its service with it');
});
