// The node agent in this process (apps/node's test runs it as its own process): a real
// nats-server, real actor processes (test/fixtures/tiny-actor.ts).
import { resolve } from 'node:path';
import t from 'tap';
import { connect, NatsServer, listActorServices, requestWithRetry, serveLarge } from '@actorflow/bus';
import { clusterSubjects, heartbeatCodec, logLineCodec, subjects } from '@actorflow/protocol';
import { discoverNodes, FETCH_FILES_ENV, listActors, measureLink, measureRequest, NodeAgent, nodeInfo, renewLease, resolveEntry, startActor, stopActors, type NodeAgentOptions } from '../mod.ts';

const root = resolve(import.meta.dirname, '..');
const tiny = 'test/fixtures/tiny-actor.ts';

async function until<T>(what: string, f: () => Promise<T | undefined>, deadlineMs = 60_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const options = (name: string, o: Partial<NodeAgentOptions> = {}): NodeAgentOptions => ({
  name,
  address: '127.0.0.1',
  cores: 2,
  cpuModel: 'test cpu',
  memoryBytes: 8 * 1024 ** 3,
  freeMemory: () => 4 * 1024 ** 3,
  gpus: [],
  backends: ['cpu'],
  labels: { zone: 'a' },
  energyEfficient: true,
  calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 1, linkMBps: 100, ms: 1 },
  root,
  childEnv: { NATS_URL: 'nats://example:4222' },
  ...o,
});

t.test('entries must stay inside the root', async (t) => {
  t.equal(resolveEntry('/r', 'apps/x/main.ts'), '/r/apps/x/main.ts');
  for (const bad of ['/etc/passwd', '../x.ts', 'a/../../x.ts']) t.throws(() => resolveEntry('/r', bad), { name: 'NodeAgentError', code: 'BAD_ENTRY' });
});

t.test('an agent on the bus: info, discovery, actors, logs, exit codes, stop, leases', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  const client = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await client.close();
    await nc.close();
  });
  const lines: string[] = [];
  const agent = await NodeAgent.start(nc, options('n1', { leaseMs: 60_000, log: (l) => lines.push(l) }));
  t.teardown(() => agent.close());
  t.equal(agent.name, 'n1');

  const link = await measureLink(client, { bytes: 64 * 1024, rounds: 2 });
  t.ok(link !== undefined && link > 0, `link ${link} MB/s`);
  const rq = await measureRequest(client, { rows: 64, rounds: 3 });
  t.ok(rq !== undefined && rq > 0, `a request round trip takes ${rq} ms`);

  const info = await nodeInfo(client, 'n1');
  t.match(info, { name: 'n1', address: '127.0.0.1', cores: 2, memoryBytes: 8 * 1024 ** 3, freeMemoryBytes: 4 * 1024 ** 3, energyEfficient: true, labels: { zone: 'a' }, running: 0 });
  const services = await listActorServices(client, { job: 'cluster' });
  const me = services.find((s) => s.metadata?.role === 'node');
  t.equal(me?.metadata?.rank, 'n1', '$SRV lists the node with its name');
  t.same(
    (await discoverNodes(client, { timeoutMs: 1000 })).map((n) => n.name),
    ['n1'],
  );

  // Logs stream on cluster.node.n1.log.<actor>.
  const logSub = client.subscribe(clusterSubjects.log('n1', 'a1'));
  const firstLog = (async () => {
    for await (const m of logSub) {
      const l = logLineCodec.decode(m.data);
      if (l.line.startsWith('tiny ready')) return l;
    }
    return undefined;
  })();
  await client.flush();
  const started = await startActor(client, 'n1', { job: 'j1', actor: 'a1', entry: tiny, args: ['--hello', 'x'], env: { EXTRA: '1' } });
  t.match(started, { job: 'j1', actor: 'a1', running: true });
  t.equal(started.code, null);
  t.ok((started.pid ?? 0) > 0);
  const again = await startActor(client, 'n1', { job: 'j1', actor: 'a1', entry: tiny, args: [] });
  t.equal(again.pid, started.pid, 'starting a running actor again is idempotent');
  const log = await firstLog;
  t.match(log, { job: 'j1', actor: 'a1', line: 'tiny ready --hello x actor=a1 nats=nats://example:4222' });
  logSub.unsubscribe();

  // A file of the requester's (a restore part) is fetched over the bus, never read at the requester's path.
  const served = serveLarge(client, 'jf.files.f1.0', () => new TextEncoder().encode('part-bytes'));
  const fileLog = (async () => {
    for await (const m of client.subscribe(clusterSubjects.log('n1', 'f1'), { max: 2 })) {
      const line = logLineCodec.decode(m.data).line;
      if (line.startsWith('file ')) return line;
    }
    return undefined;
  })();
  await client.flush();
  await startActor(client, 'n1', { job: 'jf', actor: 'f1', entry: tiny, args: ['--print-file', '/launcher/only/ps-0.bin', '--exit', '0'], env: { [FETCH_FILES_ENV]: '{"1":"jf.files.f1.0"}' } });
  const printed = (await fileLog) ?? '';
  t.match(printed, /^file .*actorflow-jf.*f1-1-ps-0\.bin=part-bytes$/, `the actor read the fetched copy (${printed})`);
  t.notMatch(printed, /\/launcher\/only/, "not the requester's path");
  served.unsubscribe();
  for (const [env, code, message] of [
    ['{"1":"elsewhere.files.x"}', 'BAD_REQUEST', /must come from a subject under jf\.files\./],
    ['{"7":"jf.files.x"}', 'BAD_REQUEST', /no argument 7/],
    ['[1]', 'BAD_REQUEST', /must be an object/],
    ['not json', 'BAD_REQUEST', /is not JSON/],
    ['{"1":"jf.files.nobody"}', 'FETCH_FAILED', /could not fetch \/x for f2 from jf\.files\.nobody/],
  ] as const)
    await t.rejects(startActor(client, 'n1', { job: 'jf', actor: 'f2', entry: tiny, args: ['--print-file', '/x'], env: { [FETCH_FILES_ENV]: env } }, { deadlineMs: 70_000 }), {
      name: 'RemoteError',
      code,
      message,
    });

  await t.rejects(startActor(client, 'n1', { job: 'j2', actor: 'a1', entry: tiny, args: [] }), { name: 'RemoteError', code: 'ACTOR_EXISTS', message: /already running here \(job j1/ });
  await t.rejects(startActor(client, 'n1', { job: 'j1', actor: 'evil', entry: '../../etc/x.ts', args: [] }), {
    name: 'RemoteError',
    code: 'BAD_ENTRY',
    message: /must be a path relative to the agent's root/,
  });
  await t.rejects(
    requestWithRetry(client, clusterSubjects.start('n1'), new TextEncoder().encode('{"job":"j"}'), { deadlineMs: 5000 }),
    { name: 'RemoteError', code: 'BAD_REQUEST', message: /cannot decode StartActorRequest: field '(entry|actor)' must be a string/ },
    'a malformed request is refused, naming the field',
  );
  await t.rejects(stopActors(client, 'n1', 'j1', 'nobody'), { name: 'RemoteError', code: 'NO_SUCH_ACTOR', message: /no actor nobody of job j1/ });

  // An actor that exits by itself: its code is kept.
  await startActor(client, 'n1', { job: 'j1', actor: 'quitter', entry: tiny, args: ['--exit', '3'] });
  const quit = await until('quitter to exit', async () => (await listActors(client, 'n1')).actors.find((a) => a.actor === 'quitter' && !a.running));
  t.equal(quit.code, 3);
  t.equal(quit.signal, null);
  t.ok((quit.endedAt ?? 0) >= quit.startedAt);
  t.equal((await nodeInfo(client, 'n1')).running, 1);

  const stopped = await stopActors(client, 'n1', 'j1', 'a1');
  t.equal(stopped.node, 'n1');
  t.match(stopped.actors, [{ actor: 'a1', running: false, code: 0, stoppedBy: 'stop request' }]);

  // A lease renewed keeps the actor; one not renewed stops it.
  await startActor(client, 'n1', { job: 'kept', actor: 'k1', entry: tiny, args: [], leaseMs: 4000 });
  const renewer = setInterval(() => renewLease(client, 'n1', 'kept', 'test'), 200);
  await startActor(client, 'n1', { job: 'lost', actor: 'l1', entry: tiny, args: [], leaseMs: 300 });
  const expired = await until('the unrenewed lease to expire', async () => (await listActors(client, 'n1')).actors.find((a) => a.actor === 'l1' && !a.running));
  t.equal(expired.stoppedBy, 'lease expired');
  await new Promise((r) => setTimeout(r, 5000)); // longer than k1's lease: only the renewals keep it
  clearInterval(renewer);
  const kept = (await listActors(client, 'n1')).actors.find((a) => a.actor === 'k1');
  t.equal(kept?.running, true, 'a renewed lease keeps its actors running');
  t.match(lines.join('\n'), /job lost: no lease renewal for 0\.3 s/);

  // A launcher's heartbeat renews a lease too.
  await startActor(client, 'n1', { job: 'hb', actor: 'h1', entry: tiny, args: [], leaseMs: 4000 });
  const beat = setInterval(() => client.publish(subjects.heartbeat('hb', 'launcher'), heartbeatCodec.encode({ job: 'hb', role: 'launcher', ts: Date.now() })), 200);
  await new Promise((r) => setTimeout(r, 5000));
  clearInterval(beat);
  t.equal((await listActors(client, 'n1')).actors.find((a) => a.actor === 'h1')?.running, true, "the launcher's heartbeat keeps them");
  const afterBeat = await until('the heartbeat lease to expire', async () => (await listActors(client, 'n1')).actors.find((a) => a.actor === 'h1' && !a.running));
  t.equal(afterBeat.stoppedBy, 'lease expired');

  // A bad lease renewal is ignored and logged; a renewal with a reply subject is answered.
  client.publish(clusterSubjects.lease('n1'), new TextEncoder().encode('{}'));
  const reply = await client.request(clusterSubjects.lease('n1'), new TextEncoder().encode('{"job":"kept"}'));
  t.equal(new TextDecoder().decode(reply.data), '{"job":"kept"}');
  t.match(lines.join('\n'), /ignored a bad lease renewal/);

  // k1's renewals stopped with the renewer: its lease ran out meanwhile.
  t.equal((await listActors(client, 'n1')).actors.find((a) => a.actor === 'k1')?.stoppedBy, 'lease expired');

  // Closing the agent stops what it started.
  await startActor(client, 'n1', { job: 'last', actor: 'c1', entry: tiny, args: [] });
  await agent.close();
  await agent.close();
  t.match(lines.join('\n'), /actor c1 of job last ended: .*\(stopped: agent shutting down\)/);
});
