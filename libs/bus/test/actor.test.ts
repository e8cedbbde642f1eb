import t from 'tap';
import { BusError, FlagError, NatsServer, actorLog, connectActor, intFlag, numberFlag } from '../mod.ts';

t.test('numeric flags name the flag when wrong', async (t) => {
  t.equal(intFlag('rank', undefined, 3), 3);
  t.equal(intFlag('rank', '2', 0), 2);
  t.throws(() => intFlag('rank', '-1', 0), FlagError);
  t.throws(() => intFlag('rank', '1.5', 0), /--rank must be an integer >= 0, got '1.5'/);
  t.equal(numberFlag('lr', '0.5', 1, { min: 0 }), 0.5);
  t.throws(() => numberFlag('lr', 'fast', 1), /--lr must be a number, got 'fast'/);
});

t.test('connectActor connects where told, and says what to do when nothing answers', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const lines: string[] = [];
  const conn = await connectActor({ 'nats-url': server.url }, { name: 'test-actor', log: (l) => lines.push(l) });
  t.ok(conn.nc.info, 'connected');
  t.equal(conn.server, undefined, 'did not start a server of its own');
  await conn.nc.close();
  await t.rejects(connectActor({ 'nats-url': 'nats://127.0.0.1:1', 'nats-no-reconnect': true }, { name: 'x', startLocalServer: true, log: () => undefined }), BusError);
  await t.rejects(connectActor({ 'nats-url': 'nats://127.0.0.1:1', 'nats-no-reconnect': true }, { name: 'x', log: () => undefined }), /npx nx serve aggregator/);
  const written: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => written.push(s) > 0) as typeof process.stderr.write;
  actorLog('a')('hello');
  process.stderr.write = orig;
  t.same(written, ['[a] hello\n']);
});
