// The by-hand end of a job over a real nats-server: when the trainers count as done, and who hears the end.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { lossReportCodec, subjects, type LossReport } from '@actorflow/protocol';
import { announceEnd, onJobEnd, supervised, trainersDone } from '../mod.ts';

const report = (job: string, rank: number, step: number, done: boolean, strategy = 'ps'): Uint8Array =>
  lossReportCodec.encode({ job, rank, step, epoch: 0, loss: 0.5, examples: 8, examplesPerSec: 1, strategy, backend: 'cpu', ts: Date.now(), ...(done ? { done } : {}) } satisfies LossReport);

t.test('trainers are done when every rank heard from has reported done (a mirrored group: all of it)', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const watch = trainersDone(nc, 'j', { minRanks: (s) => (s === 'mirrored' ? 3 : 1), settleMs: 50 });
  let resolved = false;
  void watch.done.then(() => (resolved = true));
  const roundTrip = async (): Promise<void> => {
    await nc.flush();
    await new Promise((r) => setTimeout(r, 200)); // past the settle time
  };
  nc.publish(subjects.loss, report('j', 0, 5, false, 'mirrored'));
  nc.publish(subjects.loss, report('j', 1, 5, false, 'mirrored'));
  nc.publish(subjects.loss, report('other', 2, 99, true, 'mirrored')); // another job: ignored
  nc.publish(subjects.loss, new TextEncoder().encode('not a report'));
  nc.publish(subjects.loss, report('j', 0, 10, true, 'mirrored'));
  await roundTrip();
  t.notOk(resolved, 'rank 1 still trains');
  nc.publish(subjects.loss, report('j', 1, 10, true, 'mirrored'));
  await roundTrip();
  t.notOk(resolved, 'a mirrored group of 3: rank 2 has not finished');
  nc.publish(subjects.loss, report('j', 2, 10, true, 'mirrored'));
  const done = await watch.done;
  t.same(done, { strategy: 'mirrored', steps: 10, ranks: [0, 1, 2] });
  watch.stop();
});

t.test('the end reaches actors that listen, not those that keep serving or run under a launcher', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  t.equal(supervised({ ACTORFLOW_SUPERVISED: '1' }), true);
  t.equal(supervised({}), false);
  const heard: string[] = [];
  onJobEnd(nc, 'j', (why) => heard.push(`plain ${why}`), { env: {} });
  onJobEnd(nc, 'j', (why) => heard.push(`keep ${why}`), { keepServing: true, env: {} });
  onJobEnd(nc, 'j', (why) => heard.push(`supervised ${why}`), { env: { ACTORFLOW_SUPERVISED: '1' } });
  const other = onJobEnd(nc, 'k', (why) => heard.push(`other job ${why}`), { env: {} });
  // A sentinel on the same connection: once it has the three messages, every listener has had them (in order).
  const sentinel = nc.subscribe(subjects.ctl('j', 'stop'), { max: 3 });
  const drained = (async () => {
    for await (const _m of sentinel) void _m;
  })();
  nc.publish(subjects.ctl('j', 'stop'), new TextEncoder().encode('garbage'));
  announceEnd(nc, 'j', 'done');
  announceEnd(nc, 'j', 'again'); // once only
  await drained;
  t.same(heard, ['plain done']);
  other.stop();
});
