// Node agents' users (issue 16, docs/SECURITY.md): one cluster-level user per node, `node.<name>`,
// confined to its own `cluster.node.<name>.*`; the launcher's rights to talk to the agents; and a
// REAL nats-server with the printed config — every exchange the agent has works (chunked), and a
// node user is refused every job actor's subject and every other node's.
// (libs/cluster/test/agent-permissions.test.ts runs the real NodeAgent against the same users.)
import t from 'tap';
import { errors as natsErrors, type NatsConnection, type PermissionViolationError } from '@nats-io/nats-core';
import {
  NatsServer,
  ROLES,
  connect,
  credentialsEnv,
  generateNodeCredentials,
  generateRoleCredentials,
  listActorServices,
  natsAuthUsers,
  natsNodeUsers,
  nodeConnectOptions,
  nodeCredentialsEnv,
  nodeInboxPrefix,
  nodePermissions,
  nodeUser,
  printNatsConfig,
  registerActorService,
  requestLarge,
  roleConnectOptions,
  roleOfApp,
  rolePermissions,
  serveLarge,
  subscribeLarge,
  PermissionsConfigError,
  type Role,
} from '../mod.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

t.test('nodePermissions: its own cluster.node.<name>.*, nothing of a job', async (t) => {
  t.equal(nodeUser('gpu-1'), 'node.gpu-1');
  t.equal(nodeInboxPrefix('gpu-1'), '_INBOX_node.gpu-1');
  const p = nodePermissions('gpu-1');
  t.same(p.publish.allow, ['cluster.node.gpu-1.log.*', 'cluster.node.gpu-1.exit.*', 'cluster.node.gpu-1.calibrate.*', 'cluster.hb.node-gpu-1', '*.files.*.*']);
  t.same(p.subscribe.allow, [
    'cluster.node.gpu-1.info',
    'cluster.node.gpu-1.start',
    'cluster.node.gpu-1.stop',
    'cluster.node.gpu-1.list',
    'cluster.node.gpu-1.lease',
    'cluster.node.gpu-1.calibrate.*',
    '$SRV.PING',
    '$SRV.INFO',
    '$SRV.STATS',
    '$SRV.*.actorflow',
    '$SRV.*.actorflow.*',
    'actorflow.status.cluster.node.*',
    '*.hb.launcher',
    '_INBOX_node.gpu-1.>',
  ]);
  t.same(p.allow_responses, { max: 1_000_000, expires: '30m' }, 'it answers (chunked) requests');
  t.notOk(
    [...p.publish.allow, ...p.subscribe.allow].some((s) => s.includes('>') && !s.startsWith('_INBOX_node.gpu-1.')),
    'no full wildcard but its own inbox',
  );
  // Nothing a job's actors publish or serve (the launcher's heartbeat and restore files are read-only for it).
  const job = rolePermissions('J');
  for (const r of ROLES.filter((x) => x !== 'launcher')) {
    for (const s of [...job[r].publish.allow, ...job[r].subscribe.allow].filter((x) => !x.startsWith('$SRV.'))) {
      t.notOk(p.publish.allow.includes(s) || p.subscribe.allow.includes(s), `${r}'s ${s} is not the node's`);
    }
  }
  t.throws(() => nodePermissions('a.b'), /node name 'a.b' is not usable/);
  t.throws(() => nodeUser('*'), /not usable in a NATS subject/);
  t.throws(() => roleOfApp('node'), { name: 'PermissionsConfigError', message: /own cluster-level user, nodeUser\(name\)/ });
});

t.test("the launcher's rights towards the agents; no other role has any", async (t) => {
  const p = rolePermissions('J');
  t.same(
    p.launcher.publish.allow.filter((s) => s.startsWith('cluster.')),
    ['cluster.node.*.info', 'cluster.node.*.start', 'cluster.node.*.stop', 'cluster.node.*.list', 'cluster.node.*.lease'],
    'requests and lease renewals to any node',
  );
  t.same(
    p.launcher.subscribe.allow.filter((s) => s.startsWith('cluster.') || s.includes('.files.')),
    ['cluster.node.*.log.*', 'cluster.node.*.exit.*', 'J.files.*.*'],
    "the nodes' log and exit streams, and its own job's restore files to serve",
  );
  t.notOk(
    p.launcher.subscribe.allow.some((s) => /^cluster\.node\.\*\.(info|start|stop|list|lease)$/.test(s)),
    'it cannot read the start requests (their env) or pose as an agent',
  );
  for (const r of ROLES.filter((x) => x !== 'launcher')) {
    t.notOk(
      [...p[r].publish.allow, ...p[r].subscribe.allow].some((s) => s.startsWith('cluster.') || s.includes('.files.')),
      `${r} has no node subject`,
    );
  }
});

t.test('node credentials, env, user entries and the printed config', async (t) => {
  const [a, b] = generateNodeCredentials(['a', 'b']);
  t.match(a, { name: 'a', user: 'node.a', pass: /^[A-Za-z0-9_-]{32}$/ });
  t.not(a?.pass, b?.pass, 'one password per node');
  t.throws(() => generateNodeCredentials(['a', 'a']), /node a is named twice/);
  t.throws(() => generateNodeCredentials(['a.b']), /node name 'a.b' is not usable/);
  t.same(nodeCredentialsEnv(a!), { NATS_USER: 'node.a', NATS_PASSWORD: a?.pass, NATS_INBOX_PREFIX: '_INBOX_node.a' });
  t.same(nodeConnectOptions(a!), { user: 'node.a', pass: a?.pass, inboxPrefix: '_INBOX_node.a' });
  const users = natsNodeUsers([a!, b!]);
  t.match(users, '# node agent a (cluster-level)');
  t.match(users, `{ user: "node.b", password: "${b?.pass}", permissions: {`);
  t.match(users, 'subscribe: { allow: ["cluster.node.b.info", "cluster.node.b.start"');
  t.throws(() => natsNodeUsers([{ name: 'a', user: 'node.b', pass: 'x' }]), /node a's user must be node\.a, got 'node\.b'/);
  t.throws(() => natsNodeUsers([{ name: 'a', user: 'node.a', pass: '$2a$x' }]), /password is not usable/);

  const creds = generateRoleCredentials('pj', { trainerRanks: 1, nodes: ['a', 'b'] });
  t.same(
    creds.nodes?.map((c) => c.user),
    ['node.a', 'node.b'],
  );
  t.equal(generateRoleCredentials('pj').nodes, undefined, 'no nodes unless asked');
  const text = natsAuthUsers('pj', creds);
  t.match(text, '# trainer rank 0 of job pj');
  t.match(text, '# node agent b (cluster-level)');
  const printed = printNatsConfig('pj', creds);
  t.match(printed, `#   node a     NATS_USER=node.a NATS_PASSWORD=${creds.nodes?.[0]?.pass} NATS_INBOX_PREFIX=_INBOX_node.a  (npx nx serve node -- --name a)`);
  t.match(printed, /Node users belong to the cluster, not to this job/);
  t.notMatch(printNatsConfig('pj', generateRoleCredentials('pj')), /node agent|NATS_USER=node\./, 'no node users without them');
  // A job user named 'node' would read every node's inbox (_INBOX_node.>): refused.
  t.throws(() => natsAuthUsers('pj', { ...creds, launcher: { user: 'node', pass: 'secret' } }), { name: 'PermissionsConfigError', message: /user name 'node' is reserved/ });
  t.throws(() => natsAuthUsers('pj', { ...creds, nodes: [{ name: 'a', user: 'pj-trainer', pass: 'x' }] }), PermissionsConfigError);
});

// ---- a real nats-server with the printed config: a job's users and two nodes' ----

const JOB = 'pn';
const creds = generateRoleCredentials(JOB, { nodes: ['a', 'b'] });
const [nodeA, nodeB] = creds.nodes ?? [];

interface Client {
  readonly nc: NatsConnection;
  violation(): Promise<PermissionViolationError>;
  readonly violations: PermissionViolationError[];
}

async function client(server: NatsServer, o: { user: string; pass: string; inboxPrefix: string } | undefined): Promise<Client> {
  const nc = await connect({ servers: [server.url], ...(o ?? {}), reconnect: false });
  const seen: PermissionViolationError[] = [];
  const all: PermissionViolationError[] = [];
  const waiters: ((e: PermissionViolationError) => void)[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) {
        all.push(s.error);
        const w = waiters.shift();
        if (w !== undefined) w(s.error);
        else seen.push(s.error);
      }
    }
  })();
  return {
    nc,
    violations: all,
    violation: () => {
      const e = seen.shift();
      return e !== undefined ? Promise.resolve(e) : new Promise((r) => waiters.push(r));
    },
  };
}

t.test('a real nats-server: the agent’s exchanges work, and a node user is refused the rest', async (t) => {
  const server = await NatsServer.start({ config: printNatsConfig(JOB, creds), maxPayload: 16 * 1024 });
  t.teardown(() => server.stop());
  const env = (r: Role): { user: string; pass: string; inboxPrefix: string } => roleConnectOptions(r, creds);
  const [a, b, launcher, trainer, aggregator, evaluator] = await Promise.all([
    client(server, nodeConnectOptions(nodeA!)),
    client(server, nodeConnectOptions(nodeB!)),
    client(server, env('launcher')),
    client(server, env('trainer')),
    client(server, env('aggregator')),
    client(server, env('evaluator')),
  ]);
  t.teardown(() => Promise.all([a, b, launcher, trainer, aggregator, evaluator].map((c) => c.nc.close())));
  const big = new Uint8Array(40_000).map((_, i) => (i * 13) % 251); // chunked both ways at 16 KiB

  t.test('what the agent and the launcher do', async (t) => {
    const next = (c: Client, subject: string): Promise<{ subject: string; data: string }> =>
      new Promise((resolve) => {
        const sub = c.nc.subscribe(subject, {
          callback: (_e, m) => {
            sub.unsubscribe();
            resolve({ subject: m.subject, data: dec.decode(m.data) });
          },
        });
      });
    const subs = [
      serveLarge(a.nc, 'cluster.node.a.info', () => big),
      serveLarge(a.nc, 'cluster.node.a.start', (p) => enc.encode(`started ${p.length}`)),
      serveLarge(a.nc, 'cluster.node.a.stop', () => enc.encode('stopped')),
      serveLarge(a.nc, 'cluster.node.a.list', () => enc.encode('[]')),
      serveLarge(launcher.nc, `${JOB}.files.trainer-0.0`, () => big),
      a.nc.subscribe('cluster.node.a.calibrate.*', { callback: (_e, m) => void m.respond(m.data) }),
    ];
    t.teardown(() => subs.forEach((s) => s.unsubscribe()));
    const lease = next(a, 'cluster.node.a.lease');
    const beat = next(a, '*.hb.launcher');
    const log = next(launcher, 'cluster.node.*.log.*');
    const exit = next(launcher, 'cluster.node.*.exit.*');
    await Promise.all([a.nc.flush(), launcher.nc.flush()]);

    t.same(await requestLarge(launcher.nc, 'cluster.node.a.info', new Uint8Array(0)), big, 'the launcher reads the node’s info (a chunked reply)');
    t.equal(dec.decode(await requestLarge(launcher.nc, 'cluster.node.a.start', big)), 'started 40000', 'the launcher starts an actor (a chunked upload)');
    t.equal(dec.decode(await requestLarge(launcher.nc, 'cluster.node.a.stop', new Uint8Array(0))), 'stopped');
    t.equal(dec.decode(await requestLarge(launcher.nc, 'cluster.node.a.list', new Uint8Array(0))), '[]');
    launcher.nc.publish('cluster.node.a.lease', enc.encode('{"job":"pn"}'));
    t.equal((await lease).data, '{"job":"pn"}', 'the launcher renews a lease');
    a.nc.publish('cluster.node.a.log.trainer-0', enc.encode('a line'));
    a.nc.publish('cluster.node.a.exit.trainer-0', enc.encode('exit 0'));
    t.same(await log, { subject: 'cluster.node.a.log.trainer-0', data: 'a line' }, 'the launcher follows the node’s log lines');
    t.same(await exit, { subject: 'cluster.node.a.exit.trainer-0', data: 'exit 0' }, '…and its exits');
    t.same(await requestLarge(a.nc, `${JOB}.files.trainer-0.0`, new Uint8Array(0)), big, 'the node fetches a restore file from the launcher (chunked)');
    t.equal(dec.decode((await a.nc.request('cluster.node.a.calibrate.x1', enc.encode('echo'), { timeout: 5000 })).data), 'echo', 'its calibration echo');
    // Any actor of the job may publish J.hb.* (docs/SECURITY.md), so a launcher heartbeat too.
    trainer.nc.publish(`${JOB}.hb.launcher`, enc.encode('beat'));
    t.same(await beat, { subject: `${JOB}.hb.launcher`, data: 'beat' }, 'the node hears a job’s launcher heartbeat');

    // A NATS service like every actor: discovery, STATS, its status endpoint, its heartbeat.
    const service = await registerActorService(a.nc, { role: 'node', job: 'cluster', rank: 'a', heartbeatMs: 50 });
    t.teardown(() => service.stop());
    const listed = await listActorServices(launcher.nc, { job: 'cluster', timeoutMs: 2000 });
    t.same(
      listed.map((s) => s.metadata?.rank),
      ['a'],
      '$SRV.INFO from the launcher lists the node',
    );
    const ping = JSON.parse(dec.decode((await launcher.nc.request('$SRV.PING.actorflow', new Uint8Array(0), { timeout: 5000 })).data)) as { metadata?: Record<string, string> };
    t.match(ping.metadata, { role: 'node', rank: 'a' }, '$SRV.PING from the launcher sees it');
    const stats = await launcher.nc.request(`$SRV.STATS.actorflow.${service.service.info().id}`, new Uint8Array(0), { timeout: 5000 });
    t.match(JSON.parse(dec.decode(stats.data)), { metadata: { role: 'node', rank: 'a' } }, '…and $SRV.STATS');
    await a.nc.flush();
    await new Promise((r) => setTimeout(r, 150)); // a few heartbeats on cluster.hb.node-a
    t.same(a.violations, [], 'the node did all of it without one violation');
    t.same(launcher.violations, [], 'so did the launcher');
  });

  t.test('hostile cases are refused by the server', async (t) => {
    const refusedSub = async (c: Client, subject: string, what: string): Promise<void> => {
      const v = c.violation();
      c.nc.subscribe(subject, { callback: (err) => void (err === null && t.fail(`${what}: received a message`)) });
      await c.nc.flush();
      const e = await v;
      t.match({ op: e.operation, subject: e.subject }, { op: 'subscription', subject }, what);
    };
    const refusedPub = async (c: Client, subject: string, what: string): Promise<void> => {
      const v = c.violation();
      c.nc.publish(subject, enc.encode('forged'));
      await c.nc.flush();
      const e = await v;
      t.match({ op: e.operation, subject: e.subject }, { op: 'publish', subject }, what);
    };
    // Legitimate listeners that would see anything that got through.
    const leaked: string[] = [];
    const spy = (c: Client, subject: string): void => void c.nc.subscribe(subject, { callback: (_e, m) => void leaked.push(m.subject) });
    spy(aggregator, `${JOB}.ps.*.push.*`);
    spy(aggregator, `${JOB}.ctl.stop`);
    spy(trainer, `${JOB}.coll.>`);
    spy(evaluator, 'train.loss');
    spy(launcher, 'cluster.node.*.log.*');
    spy(b, 'cluster.node.b.start');
    spy(b, 'cluster.node.b.calibrate.*');
    await Promise.all([aggregator, trainer, evaluator, launcher, b].map((c) => c.nc.flush()));

    await refusedPub(a, `${JOB}.ps.0.push.0`, 'a node cannot push gradients');
    await refusedPub(a, `${JOB}.coll.world.down`, 'a node cannot speak in the collectives');
    await refusedPub(a, 'train.loss', 'a node cannot report losses');
    await refusedPub(a, `${JOB}.ctl.stop`, 'a node cannot end a job');
    await refusedPub(a, `${JOB}.ctl.config`, 'a node cannot ask for a job’s config');
    await refusedPub(a, `${JOB}.hb.trainer-0`, 'a node cannot forge an actor’s heartbeat');
    await refusedPub(a, 'cluster.node.b.log.trainer-0', 'node a cannot forge node b’s log lines');
    await refusedPub(a, 'cluster.node.b.exit.trainer-0', '…nor its exits');
    await refusedPub(a, 'cluster.node.b.start', 'node a cannot start actors on node b');
    await refusedPub(a, 'cluster.node.b.calibrate.x', 'nor use node b’s calibration subjects');
    await refusedPub(a, 'cluster.hb.node-b', 'nor beat for node b');
    await refusedSub(a, 'cluster.node.b.start', 'node a cannot read node b’s start requests');
    await refusedSub(a, 'cluster.node.*.start', '…nor every node’s');
    await refusedSub(a, '_INBOX_node.b.>', 'node a cannot read node b’s replies');
    await refusedSub(a, `_INBOX_${JOB}-launcher.>`, '…nor the launcher’s');
    await refusedSub(a, `${JOB}.files.>`, 'a node cannot serve (forge) a restore file');
    await refusedSub(a, `${JOB}.ctl.config`, 'a node cannot answer a job’s config');
    await refusedSub(a, `${JOB}.hb.*`, 'a node hears only launchers’ heartbeats');
    await refusedSub(launcher, 'cluster.node.a.start', 'the launcher cannot read (or answer) a node’s start requests');
    await refusedPub(launcher, 'cluster.node.a.log.x', 'the launcher cannot forge a node’s log lines');
    await refusedPub(trainer, 'cluster.node.a.start', 'a trainer cannot start processes on a node');
    const anonymous = await client(server, undefined);
    t.teardown(() => anonymous.nc.close());
    await refusedPub(anonymous, 'cluster.node.a.start', 'an anonymous client (the monitor) cannot either');

    await Promise.all([aggregator, trainer, evaluator, launcher, b].map((c) => c.nc.flush()));
    t.same(leaked, [], 'nothing forged reached anyone');
  });
});

t.test('an env as printed logs the agent in', async (t) => {
  const c = generateRoleCredentials('pe', { nodes: ['solo'] });
  const server = await NatsServer.start({ config: printNatsConfig('pe', c) });
  t.teardown(() => server.stop());
  const e = nodeCredentialsEnv(c.nodes![0]!);
  const nc = await connect({ servers: [server.url], user: e.NATS_USER, pass: e.NATS_PASSWORD, inboxPrefix: e.NATS_INBOX_PREFIX, reconnect: false });
  t.teardown(() => nc.close());
  const got = new Promise<string>((resolve) => {
    const sub = subscribeLarge(nc, 'cluster.node.solo.lease', (p) => {
      sub.unsubscribe();
      resolve(dec.decode(p));
    });
  });
  await nc.flush();
  const l = credentialsEnv('launcher', c);
  const launcher = await connect({ servers: [server.url], user: l.NATS_USER, pass: l.NATS_PASSWORD, inboxPrefix: l.NATS_INBOX_PREFIX, reconnect: false });
  t.teardown(() => launcher.close());
  launcher.publish('cluster.node.solo.lease', enc.encode('renew'));
  t.equal(await got, 'renew');
});
