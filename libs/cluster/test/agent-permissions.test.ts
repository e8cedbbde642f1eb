// The real NodeAgent logged in as its own node user (`node.<name>`, docs/SECURITY.md) on a real
// nats-server started with the printed per-role config: it calibrates, registers, answers the
// launcher's user (discovery, info, start with a fetched restore file, logs, exit, list, lease,
// stop) without a single permission violation — and its user is refused a trainer's push, a
// collective, train.loss, a job's stop and another node's subjects.
import { resolve } from 'node:path';
import t from 'tap';
import { errors as natsErrors, type NatsConnection, type PermissionViolationError } from '@nats-io/nats-core';
import { connect, generateRoleCredentials, NatsServer, nodeConnectOptions, printNatsConfig, roleConnectOptions, serveLarge, type Role } from '@actorflow/bus';
import { actorExitCodec, clusterSubjects, logLineCodec } from '@actorflow/protocol';
import { discoverNodes, FETCH_FILES_ENV, listActors, measureLink, measureRequest, NodeAgent, nodeInfo, startActor, stopActors, type NodeAgentOptions } from '../mod.ts';

const root = resolve(import.meta.dirname, '..');
const tiny = 'test/fixtures/tiny-actor.ts';
const JOB = 'pj';
const enc = new TextEncoder();

const options = (name: string): NodeAgentOptions => ({
  name,
  address: '127.0.0.1',
  cores: 2,
  cpuModel: 'test cpu',
  memoryBytes: 8 * 1024 ** 3,
  freeMemory: () => 4 * 1024 ** 3,
  gpus: [],
  backends: ['cpu'],
  labels: {},
  energyEfficient: false,
  calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 1, ms: 1 },
  root,
  childEnv: { NATS_URL: 'nats://example:4222' },
  leaseMs: 60_000,
});

interface Client {
  readonly nc: NatsConnection;
  /** Every permission violation the server reported on this connection so far. */
  readonly violations: PermissionViolationError[];
  /** The next one. */
  violation(): Promise<PermissionViolationError>;
}

async function client(server: NatsServer, o: { user: string; pass: string; inboxPrefix: string }): Promise<Client> {
  const nc = await connect({ servers: [server.url], ...o, reconnect: false });
  const all: PermissionViolationError[] = [];
  const waiters: ((e: PermissionViolationError) => void)[] = [];
  let taken = 0;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type !== 'error' || !(s.error instanceof natsErrors.PermissionViolationError)) continue;
      all.push(s.error);
      const w = waiters.shift();
      if (w !== undefined) {
        taken++;
        w(s.error);
      }
    }
  })();
  return {
    nc,
    violations: all,
    violation: () => {
      const e = all[taken];
      if (e !== undefined) {
        taken++;
        return Promise.resolve(e);
      }
      return new Promise((r) => waiters.push(r));
    },
  };
}

t.test('a NodeAgent as its node user: everything it does is allowed, nothing of a job is', async (t) => {
  const creds = generateRoleCredentials(JOB, { nodes: ['n1', 'n2'] });
  const server = await NatsServer.start({ config: printNatsConfig(JOB, creds), maxPayload: 16 * 1024 });
  t.teardown(() => server.stop());
  const role = (r: Role): Promise<Client> => client(server, roleConnectOptions(r, creds));
  const [node, launcher, trainer, aggregator, evaluator] = await Promise.all([
    client(server, nodeConnectOptions(creds.nodes![0]!)),
    role('launcher'),
    role('trainer'),
    role('aggregator'),
    role('evaluator'),
  ]);
  t.teardown(() => Promise.all([node, launcher, trainer, aggregator, evaluator].map((c) => c.nc.close())));

  // The calibration echo lives under the node's own subjects (its user may use no other).
  const link = await measureLink(node.nc, { node: 'n1', bytes: 64 * 1024, rounds: 2 });
  t.ok(link !== undefined && link > 0, `link ${link} MB/s as the node user`);
  const rq = await measureRequest(node.nc, { node: 'n1', rows: 64, rounds: 3 });
  t.ok(rq !== undefined && rq > 0, `a request round trip ${rq} ms as the node user`);

  const lines: string[] = [];
  const agent = await NodeAgent.start(node.nc, { ...options('n1'), log: (l) => lines.push(l) });
  t.teardown(() => agent.close());

  // The launcher's user: $SRV discovery sees the agent; it reads its info.
  const ping = JSON.parse(new TextDecoder().decode((await launcher.nc.request('$SRV.PING.actorflow', new Uint8Array(0), { timeout: 5000 })).data)) as { metadata?: Record<string, string> };
  t.match(ping.metadata, { role: 'node', job: 'cluster', rank: 'n1' }, 'a $SRV.PING from the launcher sees the agent');
  t.same(
    (await discoverNodes(launcher.nc, { timeoutMs: 1000 })).map((n) => n.name),
    ['n1'],
    'discoverNodes as the launcher',
  );
  t.match(await nodeInfo(launcher.nc, 'n1'), { name: 'n1', cores: 2, running: 0 });

  // A start with a restore file fetched from the launcher (`pj.files.<actor>.<n>`), its log line and its exit.
  const served = serveLarge(launcher.nc, `${JOB}.files.f1.0`, () => enc.encode('part-bytes'));
  const fileLine = new Promise<string>((resolveLine) => {
    const sub = launcher.nc.subscribe(clusterSubjects.allLogs, {
      callback: (_e, m) => {
        const l = logLineCodec.decode(m.data);
        if (!l.line.startsWith('file ')) return;
        sub.unsubscribe();
        resolveLine(l.line);
      },
    });
  });
  const exited = new Promise<number | null>((resolveExit) => {
    const sub = launcher.nc.subscribe(clusterSubjects.allExits, {
      callback: (_e, m) => {
        sub.unsubscribe();
        resolveExit(actorExitCodec.decode(m.data).status.code);
      },
    });
  });
  await launcher.nc.flush();
  const started = await startActor(launcher.nc, 'n1', {
    job: JOB,
    actor: 'f1',
    entry: tiny,
    args: ['--print-file', '/launcher/only/ps-0.bin', '--exit', '0'],
    env: { [FETCH_FILES_ENV]: `{"1":"${JOB}.files.f1.0"}` },
  });
  t.match(started, { job: JOB, actor: 'f1' }, 'the launcher starts an actor on the node');
  t.match(await fileLine, /^file .*f1-1-ps-0\.bin=part-bytes$/, "the agent fetched the launcher's file; its actor's output reached the launcher");
  t.equal(await exited, 0, "the actor's exit reached the launcher");
  served.unsubscribe();
  t.match((await listActors(launcher.nc, 'n1')).actors, [{ job: JOB, actor: 'f1', running: false, code: 0 }]);
  const echo = await launcher.nc.request(clusterSubjects.lease('n1'), enc.encode(`{"job":"${JOB}"}`), { timeout: 5000 });
  t.equal(new TextDecoder().decode(echo.data), `{"job":"${JOB}"}`, 'a lease renewal is answered');
  t.same((await stopActors(launcher.nc, 'n1', JOB)).actors.length, 1);
  await node.nc.flush();
  t.same(
    node.violations.map((v) => v.message),
    [],
    'the agent did all of it without one permission violation',
  );
  t.same(
    launcher.violations.map((v) => v.message),
    [],
    'and so did the launcher',
  );

  // What the node user may not do. Legitimate listeners would see anything that got through.
  const leaked: string[] = [];
  const spy = (c: Client, subject: string): void => void c.nc.subscribe(subject, { callback: (_e, m) => void leaked.push(m.subject) });
  spy(aggregator, `${JOB}.ps.*.push.*`);
  spy(aggregator, `${JOB}.ctl.stop`);
  spy(trainer, `${JOB}.coll.>`);
  spy(evaluator, 'train.loss');
  spy(launcher, clusterSubjects.allLogs);
  await Promise.all([aggregator, trainer, evaluator, launcher].map((c) => c.nc.flush()));
  const refused = async (op: 'publish' | 'subscription', subject: string, what: string): Promise<void> => {
    const v = node.violation();
    if (op === 'publish') node.nc.publish(subject, enc.encode('forged'));
    else node.nc.subscribe(subject, { callback: (err) => void (err === null && t.fail(`${what}: received a message`)) });
    await node.nc.flush();
    const e = await v;
    t.match({ op: e.operation, subject: e.subject }, { op, subject }, what);
  };
  await refused('publish', `${JOB}.ps.0.push.0`, 'the node user cannot push gradients');
  await refused('publish', `${JOB}.coll.world.down`, 'nor speak in a collective');
  await refused('publish', 'train.loss', 'nor report a loss');
  await refused('publish', `${JOB}.ctl.stop`, 'nor end a job');
  await refused('publish', clusterSubjects.log('n2', 'x'), "nor forge another node's log lines");
  await refused('publish', clusterSubjects.start('n2'), 'nor start actors on another node');
  await refused('subscription', clusterSubjects.start('n2'), "nor read another node's start requests");
  await Promise.all([aggregator, trainer, evaluator, launcher].map((c) => c.nc.flush()));
  t.same(leaked, [], 'nothing forged reached anyone');

  await agent.close();
  t.match(lines.join('\n'), /fetched .* over the bus/);
});
