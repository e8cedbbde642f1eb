// Per-role NATS permissions (issue 13): the generated config, and a REAL nats-server started with
// it — each role can do its part of a job (tiny real exchanges, chunked both ways) and the hostile
// cases are refused by the server with a permissions violation.
import t from 'tap';
import { errors as natsErrors, type NatsConnection, type PermissionViolationError } from '@nats-io/nats-core';
import {
  NatsServer,
  ROLES,
  connect,
  credentialsEnv,
  generateRoleCredentials,
  listActorServices,
  natsAuthConfig,
  natsAuthUsers,
  printNatsConfig,
  registerActorService,
  requestLarge,
  rolePermissions,
  roleOfApp,
  serveLarge,
  subscribeLarge,
  publishLarge,
  inboxPrefix,
  inboxPrefixOf,
  roleConnectOptions,
  PermissionsConfigError,
  type Role,
  type RoleCredentials,
} from '../mod.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

t.test('rolePermissions: job-scoped, and the issue-13 subjects only where they belong', async (t) => {
  const p = rolePermissions('jobA');
  t.same(Object.keys(p).sort(), [...ROLES].sort(), 'one entry per role');
  const everything = ROLES.flatMap((r) => [...p[r].publish.allow, ...p[r].subscribe.allow]);
  for (const s of everything) {
    const ok = s.startsWith('jobA.') || s.startsWith('train.') || s.startsWith('$SRV.') || /^_INBOX(_jobA-[a-z-]+)?\.>$/.test(s) || s.startsWith('actorflow.status.jobA.');
    const toNodes = s.startsWith('cluster.node.*.') && !ROLES.some((r) => r !== 'launcher' && [...p[r].publish.allow, ...p[r].subscribe.allow].includes(s));
    t.ok(ok || toNodes, `${s} is job A's, a public report, discovery, an inbox or (the launcher's only) the node agents'`);
  }
  for (const r of ROLES) {
    const inboxes = [...p[r].publish.allow, ...p[r].subscribe.allow].filter((s) => s.startsWith('_INBOX'));
    t.same(inboxes, r === 'monitor' ? ['_INBOX_jobA-monitor.>', '_INBOX.>'] : [`_INBOX_jobA-${r}.>`], `${r}: subscribes only to its own inbox, publishes to none`);
  }
  t.same(
    rolePermissions('jobA', { trainer: 'alice@x' }).trainer.subscribe.allow.filter((s) => s.startsWith('_INBOX')),
    ['_INBOX_alice_x.>'],
    'a named user gets its own prefix',
  );
  const who = (kind: 'publish' | 'subscribe', subject: string): Role[] => ROLES.filter((r) => p[r][kind].allow.includes(subject));
  t.same(who('subscribe', 'jobA.ctl.config'), ['aggregator'], 'only aggregators answer ctl.config');
  t.same(who('subscribe', 'jobA.ps.*.push.*'), ['aggregator'], 'only aggregators take pushes');
  t.same(who('subscribe', 'jobA.ps.*.pull'), ['aggregator']);
  t.same(who('publish', 'jobA.ps.*.push.*'), ['trainer'], 'only trainers push');
  t.same(who('publish', 'jobA.ctl.checkpoint'), ['trainer'], 'only trainers (mirrored rank 0) send the replica');
  t.same(who('subscribe', 'jobA.ctl.checkpoint'), ['aggregator']);
  t.same(who('subscribe', 'jobA.data.*.next'), ['data-shard'], 'only data shards serve batches');
  t.same(who('publish', 'jobA.data.*.next'), ['trainer'], 'only trainers take batches');
  t.same(who('publish', 'jobA.coll.>'), ['trainer'], 'only trainers speak in the collectives');
  t.same(who('publish', 'train.loss'), ['trainer']);
  t.same(who('publish', 'train.eval'), ['evaluator']);
  t.same(who('subscribe', 'jobA.hb.*'), ['launcher'], 'the launcher watches heartbeats');
  t.same(
    p.monitor.subscribe.allow.filter((s) => !s.startsWith('$SRV.') && !s.startsWith('_INBOX') && !s.startsWith('actorflow.')),
    ['train.loss', 'train.eval'],
    'a monitor reads only train.*',
  );
  t.notOk(
    p.launcher.publish.allow.some((s) => /\.(push|pull|next|checkpoint|coll)|^train\.|\.hb\./.test(s)),
    'the launcher publishes only requests for states and control',
  );
  for (const r of ROLES) t.same(p[r].allow_responses, { max: 1_000_000, expires: '30m' }, `${r} may answer (chunked) requests`);
  t.throws(() => rolePermissions('a.b'), /job id 'a.b' is not usable/);
  t.throws(() => rolePermissions('*'), /not usable in a NATS subject/);
});

t.test('credentials, env and config text', async (t) => {
  const a = generateRoleCredentials('j1');
  const b = generateRoleCredentials('j1');
  for (const r of ROLES) {
    t.equal(a[r].user, `j1-${r}`);
    t.match(a[r].pass, /^[A-Za-z0-9_-]{32}$/, `${r}: 192 random bits, base64url`);
    t.not(a[r].pass, b[r].pass, `${r}: fresh every call`);
  }
  t.equal(new Set(ROLES.map((r) => a[r].pass)).size, ROLES.length, 'a different password per role');
  t.same(credentialsEnv('trainer', a), { NATS_USER: 'j1-trainer', NATS_PASSWORD: a.trainer.pass, NATS_INBOX_PREFIX: '_INBOX_j1-trainer' });
  t.same(roleConnectOptions('aggregator', a), { user: 'j1-aggregator', pass: a.aggregator.pass, inboxPrefix: '_INBOX_j1-aggregator' });
  t.equal(inboxPrefix('a.b+c'), '_INBOX_a_b_c');
  t.throws(() => inboxPrefix(''), PermissionsConfigError);
  t.throws(() => natsAuthUsers('j1', { ...a, trainer: { user: 'x.y', pass: 'p' }, evaluator: { user: 'x_y', pass: 'q' } }), /same inbox prefix _INBOX_x_y/);
  t.throws(() => credentialsEnv('trainer', {} as Record<Role, RoleCredentials>), /no credentials for role trainer/);
  t.equal(roleOfApp('job'), 'launcher');
  t.equal(roleOfApp('data-shard'), 'data-shard');
  t.throws(() => roleOfApp('recommend'), PermissionsConfigError);
  const conf = natsAuthConfig('j1', a);
  t.match(conf, /^authorization \{\n {2}users = \[\n/);
  t.match(conf, /no_auth_user: "j1-monitor"\n$/);
  t.notMatch(natsAuthConfig('j1', a, { anonymousMonitor: false }), /no_auth_user/);
  for (const r of ROLES) t.match(conf, `{ user: "j1-${r}", password: "${a[r].pass}", permissions: {`);
  t.match(conf, 'subscribe: { allow: ["$SRV.PING", "$SRV.INFO", "$SRV.STATS", "$SRV.*.actorflow", "$SRV.*.actorflow.*", "actorflow.status.j1.aggregator.*", "_INBOX_j1-aggregator.>", "j1.ps.*.pull"');
  t.throws(() => natsAuthUsers('j1', { ...a, trainer: { user: 'x y', pass: 'p' } }), /trainer user name 'x y' is not usable/);
  t.throws(() => natsAuthUsers('j1', { ...a, trainer: { user: 'j1-trainer', pass: '$2a$11$abc' } }), /trainer password is not usable/);
  t.throws(() => natsAuthUsers('j1', { ...a, evaluator: a.trainer }), /user 'j1-trainer' is given to two roles/);
  const { monitor: _m, ...noMonitor } = a;
  t.throws(() => natsAuthConfig('j1', noMonitor as Record<Role, RoleCredentials>), /no credentials for role monitor/);
  const printed = printNatsConfig('j1', a);
  t.match(printed, /^# actorflow: per-role NATS users of job j1/);
  t.match(printed, `#   trainer    NATS_USER=j1-trainer NATS_PASSWORD=${a.trainer.pass} NATS_INBOX_PREFIX=_INBOX_j1-trainer`);
  t.ok(printed.endsWith(conf), 'the printed config is the auth config under a comment header');
  t.not(printNatsConfig('j1'), printNatsConfig('j1'), 'fresh passwords when none are given');
});

t.test('per-rank trainer users: only rank 0 may write the replica, each rank has its own inbox', async (t) => {
  const creds = generateRoleCredentials('rk', { trainerRanks: 2 });
  t.same(
    creds.trainerRanks?.map((c) => c.user),
    ['rk-trainer-0', 'rk-trainer-1'],
  );
  t.same(credentialsEnv('trainer', creds, 'trainer-1'), { NATS_USER: 'rk-trainer-1', NATS_PASSWORD: creds.trainerRanks?.[1]?.pass, NATS_INBOX_PREFIX: '_INBOX_rk-trainer-1' });
  t.equal(credentialsEnv('trainer', creds).NATS_USER, 'rk-trainer', 'without an actor name: the plain trainer user');
  t.equal(credentialsEnv('aggregator', creds, 'aggregator-0').NATS_USER, 'rk-aggregator');
  t.throws(() => credentialsEnv('trainer', creds, 'trainer-2'), /no trainer user for rank 2/);
  t.match(printNatsConfig('rk', creds), `#   trainer 1  NATS_USER=rk-trainer-1 NATS_PASSWORD=${creds.trainerRanks?.[1]?.pass}`);
  const server = await NatsServer.start({ config: natsAuthConfig('rk', creds), maxPayload: 16 * 1024 });
  t.teardown(() => server.stop());
  const as = async (env: { NATS_USER: string; NATS_PASSWORD: string; NATS_INBOX_PREFIX: string }): Promise<Client> => client(server, { user: env.NATS_USER, pass: env.NATS_PASSWORD });
  const [r0, r1, agg] = await Promise.all([as(credentialsEnv('trainer', creds, 'trainer-0')), as(credentialsEnv('trainer', creds, 'trainer-1')), as(credentialsEnv('aggregator', creds))]);
  t.teardown(() => Promise.all([r0, r1, agg].map((c) => c.nc.close())));
  const stored: number[] = [];
  const sub = serveLarge(agg.nc, 'rk.ctl.checkpoint', (p) => (stored.push(p.length), enc.encode('stored')));
  serveLarge(agg.nc, 'rk.ps.0.pull', () => enc.encode('rows'));
  t.teardown(() => sub.unsubscribe());
  await agg.nc.flush();
  const replica = new Uint8Array(40_000).fill(7); // a chunked upload
  t.equal(dec.decode(await requestLarge(r0.nc, 'rk.ctl.checkpoint', replica)), 'stored', 'rank 0 writes the replica');
  const v = r1.violation();
  await t.rejects(requestLarge(r1.nc, 'rk.ctl.checkpoint', replica, { timeoutMs: 1500 }), 'rank 1 cannot: its request never reaches the aggregator');
  t.match(await v, { operation: 'publish', subject: 'rk.ctl.checkpoint' }, 'refused by the server');
  t.same(stored, [40_000], 'only rank 0’s replica was stored');
  t.equal(dec.decode(await requestLarge(r1.nc, 'rk.ps.0.pull', new Uint8Array(0))), 'rows', 'rank 1 does the rest of a trainer’s work');
  const w = r1.violation();
  r1.nc.subscribe('_INBOX_rk-trainer-0.>');
  await r1.nc.flush();
  t.match(await w, { operation: 'subscription', subject: '_INBOX_rk-trainer-0.>' }, 'rank 1 cannot read rank 0’s replies');
});

t.test('the printed config is accepted by nats-server as is', async (t) => {
  const creds = generateRoleCredentials('printed');
  const server = await NatsServer.start({ config: printNatsConfig('printed', creds) });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url], ...roleConnectOptions('trainer', creds), reconnect: false });
  t.teardown(() => nc.close());
  const env = credentialsEnv('aggregator', creds);
  const agg = await connect({ servers: [server.url], user: env.NATS_USER, pass: env.NATS_PASSWORD, inboxPrefix: env.NATS_INBOX_PREFIX, reconnect: false });
  t.teardown(() => agg.close());
  serveLarge(agg, 'printed.ctl.config', () => enc.encode('ok'));
  await agg.flush();
  t.equal(dec.decode(await requestLarge(nc, 'printed.ctl.config', new Uint8Array(0))), 'ok', 'a trainer gets the config from the aggregator');
});

// ---- a real nats-server with two jobs' users ----

const JOB = 'pa';
const OTHER = 'pb';
const credsA = generateRoleCredentials(JOB);
const credsB = generateRoleCredentials(OTHER);
const config = `authorization {\n  users = [\n${natsAuthUsers(JOB, credsA)}\n${natsAuthUsers(OTHER, credsB)}\n  ]\n}\nno_auth_user: "${credsA.monitor.user}"\n`;

interface Client {
  readonly nc: NatsConnection;
  /** Resolves with the next permissions violation the server reports on this connection. */
  violation(): Promise<PermissionViolationError>;
}

async function client(server: NatsServer, creds: RoleCredentials | undefined, inbox: 'own' | 'default' = 'own'): Promise<Client> {
  const nc = await connect({
    servers: [server.url],
    ...(creds !== undefined ? { user: creds.user, pass: creds.pass, ...(inbox === 'own' ? { inboxPrefix: inboxPrefix(creds.user) } : {}) } : {}),
    reconnect: false,
  });
  const seen: PermissionViolationError[] = [];
  const waiters: ((e: PermissionViolationError) => void)[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error instanceof natsErrors.PermissionViolationError) {
        const w = waiters.shift();
        if (w !== undefined) w(s.error);
        else seen.push(s.error);
      }
    }
  })();
  return {
    nc,
    violation: () => {
      const e = seen.shift();
      return e !== undefined ? Promise.resolve(e) : new Promise((r) => waiters.push(r));
    },
  };
}

t.test('a real nats-server with the generated users', async (t) => {
  // A small max_payload so requests and replies above 16 KiB go chunked (uploads on private inboxes).
  const server = await NatsServer.start({ config, maxPayload: 16 * 1024 });
  t.teardown(() => server.stop());
  const roles = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, await client(server, credsA[r])] as const))) as Record<Role, Client>;
  const other = await client(server, credsB.trainer);
  t.teardown(async () => {
    await Promise.all([...Object.values(roles), other].map((c) => c.nc.close()));
  });
  const { trainer, aggregator, evaluator, monitor, launcher } = roles;
  const dataShard = roles['data-shard'];

  t.test('wrong or missing password is refused', async (t) => {
    await t.rejects(connect({ servers: [server.url], user: credsA.trainer.user, pass: credsB.trainer.pass, reconnect: false }), /Authorization Violation/i);
  });

  t.test('each role does its part', async (t) => {
    // aggregator: a parameter shard (pull answered; a 100 KB push uploaded in chunks, a 100 KB reply in chunks), the config.
    const big = new Uint8Array(100_000).map((_, i) => i % 251);
    const subs = [
      serveLarge(aggregator.nc, `${JOB}.ps.0.pull`, (p) => enc.encode(`pulled ${dec.decode(p)}`)),
      serveLarge(aggregator.nc, `${JOB}.ps.0.push.*`, (p) => p.slice().reverse()),
      serveLarge(aggregator.nc, `${JOB}.ctl.config`, () => enc.encode('{"job":"pa"}'), { queue: 'config' }),
      serveLarge(aggregator.nc, `${JOB}.ctl.checkpoint`, (p) => enc.encode(`stored ${p.length}`)),
      serveLarge(aggregator.nc, `${JOB}.ps.0.state`, () => big),
      serveLarge(dataShard.nc, `${JOB}.data.0.next`, () => enc.encode('batch 0')),
      serveLarge(dataShard.nc, `${JOB}.data.info`, () => enc.encode('info'), { queue: 'data-info' }),
      serveLarge(dataShard.nc, `${JOB}.data.test`, () => big),
      serveLarge(dataShard.nc, `${JOB}.data.0.state`, () => enc.encode('cursor')),
      serveLarge(evaluator.nc, `${JOB}.eval.now`, () => enc.encode('rmse 0.9')),
    ];
    t.teardown(() => subs.forEach((s) => s.unsubscribe()));
    await Promise.all([aggregator.nc.flush(), dataShard.nc.flush(), evaluator.nc.flush()]);
    t.equal(dec.decode(await requestLarge(trainer.nc, `${JOB}.ps.0.pull`, enc.encode('rows'))), 'pulled rows', 'trainer pulls from the aggregator');
    t.same(await requestLarge(trainer.nc, `${JOB}.ps.0.push.0`, big), big.slice().reverse(), 'trainer pushes 100 KB (chunked upload), gets 100 KB back (chunked reply)');
    t.equal(dec.decode(await requestLarge(trainer.nc, `${JOB}.ctl.checkpoint`, big)), 'stored 100000', 'trainer (rank 0) sends its replica');
    t.equal(dec.decode(await requestLarge(trainer.nc, `${JOB}.data.0.next`, new Uint8Array(0))), 'batch 0', 'trainer takes a batch from the data shard');
    for (const c of [trainer, evaluator, launcher]) t.equal(dec.decode(await requestLarge(c.nc, `${JOB}.ctl.config`, new Uint8Array(0))), '{"job":"pa"}', 'config fetched');
    t.equal(dec.decode(await requestLarge(aggregator.nc, `${JOB}.data.info`, new Uint8Array(0))), 'info', 'aggregator asks the data shards');
    t.equal((await requestLarge(evaluator.nc, `${JOB}.data.test`, new Uint8Array(0))).length, big.length, 'evaluator fetches the test set');
    t.equal(dec.decode(await requestLarge(launcher.nc, `${JOB}.eval.now`, new Uint8Array(0))), 'rmse 0.9', 'launcher asks for the final evaluation');
    t.equal((await requestLarge(launcher.nc, `${JOB}.ps.0.state`, new Uint8Array(0))).length, big.length, 'launcher checkpoints a shard');
    t.equal(dec.decode(await requestLarge(launcher.nc, `${JOB}.data.0.state`, new Uint8Array(0))), 'cursor', 'launcher checkpoints a data cursor');

    // reports: trainer → train.loss → evaluator, monitor, launcher, an anonymous watcher; evaluator → train.eval.
    const anonymous = await client(server, undefined);
    t.teardown(() => anonymous.nc.close());
    const got = (c: Client, subject: string): Promise<string> =>
      new Promise((resolve) => {
        const sub = subscribeLarge(c.nc, subject, (p) => {
          sub.unsubscribe();
          resolve(dec.decode(p));
        });
      });
    const watchers = [evaluator, monitor, launcher, anonymous].map((c) => got(c, 'train.loss'));
    const evalWatchers = [monitor, launcher].map((c) => got(c, 'train.eval'));
    await Promise.all([evaluator, monitor, launcher, anonymous].map((c) => c.nc.flush()));
    trainer.nc.publish('train.loss', enc.encode('loss 1'));
    evaluator.nc.publish('train.eval', enc.encode('eval 1'));
    t.same(await Promise.all(watchers), ['loss 1', 'loss 1', 'loss 1', 'loss 1'], 'train.loss reaches evaluator, monitor, launcher and anyone anonymous');
    t.same(await Promise.all(evalWatchers), ['eval 1', 'eval 1']);

    // collectives between trainers (chunked, as a large all-reduce would be).
    const down = new Promise<Uint8Array>((resolve) => {
      const sub = subscribeLarge(trainer.nc, `${JOB}.coll.world.0.down`, (p) => {
        sub.unsubscribe();
        resolve(p);
      });
    });
    await trainer.nc.flush();
    publishLarge(trainer.nc, `${JOB}.coll.world.0.down`, big);
    t.same(await down, big, 'trainers speak in the collectives');

    // services: every role registers (heartbeat included), the monitor and the launcher list them, the launcher hears heartbeats.
    const beats = new Set<string>();
    const hb = launcher.nc.subscribe(`${JOB}.hb.*`, { callback: (_e, m) => void beats.add(m.subject) });
    t.teardown(() => hb.unsubscribe());
    await launcher.nc.flush();
    const actors: Role[] = ['data-shard', 'trainer', 'aggregator', 'evaluator', 'monitor'];
    const services = await Promise.all(actors.map((r) => registerActorService(roles[r].nc, { role: r, job: JOB, rank: 0, heartbeatMs: 50 })));
    t.teardown(() => Promise.all(services.map((s) => s.stop())));
    for (const lister of [monitor, launcher]) {
      const listed = (await listActorServices(lister.nc, { job: JOB, timeoutMs: 2000 })).map((i) => i.metadata?.role).sort();
      t.same(listed, [...actors].sort(), 'every actor answers $SRV.INFO');
    }
    const status = await launcher.nc.request(services[1]!.statusSubject, new Uint8Array(0), { timeout: 5000 });
    t.match(JSON.parse(dec.decode(status.data)), { role: 'trainer', job: JOB }, 'the status endpoint answers the launcher');
    while (beats.size < actors.length) await new Promise((r) => setTimeout(r, 50));
    t.same([...beats].sort(), actors.map((r) => `${JOB}.hb.${r}-0`).sort(), 'every actor heartbeats, the launcher hears them');
  });

  t.test('replies are private to their user (per-user inbox prefixes)', async (t) => {
    t.equal(inboxPrefixOf(aggregator.nc), `_INBOX_${JOB}-aggregator`, 'the connection carries its prefix');
    t.equal(inboxPrefixOf(monitor.nc), `_INBOX_${JOB}-monitor`);
    const secret = new Uint8Array(40_000).map((_, i) => (i * 7) % 251); // chunked reply (max_payload 16 KiB)
    const subs = [serveLarge(dataShard.nc, `${JOB}.data.info`, () => secret, { queue: 'data-info' }), serveLarge(aggregator.nc, `${JOB}.ps.1.push.*`, (p) => enc.encode(`took ${p.length}`))];
    t.teardown(() => subs.forEach((s) => s.unsubscribe()));
    await Promise.all([dataShard.nc.flush(), aggregator.nc.flush()]);
    // The trainer (and job B's trainer) try to listen where the aggregator's replies go.
    for (const [c, who] of [
      [trainer, 'job A’s trainer'],
      [other, 'job B’s trainer'],
      [evaluator, 'the evaluator'],
    ] as const) {
      for (const subject of [`_INBOX_${JOB}-aggregator.>`, '_INBOX.>', '>', `_INBOX_${JOB}-aggregator.*`]) {
        const v = c.violation();
        c.nc.subscribe(subject, { callback: (err) => void (err === null && t.fail(`${who} read ${subject}`)) });
        await c.nc.flush();
        const e = await v;
        t.match({ op: e.operation, subject: e.subject }, { op: 'subscription', subject }, `${who} cannot subscribe to ${subject}`);
      }
    }
    // The monitor keeps the shared _INBOX.> (anonymous tools): no actor's reply lands there.
    const seenByMonitor: string[] = [];
    const monitorSpy = monitor.nc.subscribe('_INBOX.>', { callback: (_e, m) => void seenByMonitor.push(m.subject) });
    await monitor.nc.flush();
    t.same(await requestLarge(aggregator.nc, `${JOB}.data.info`, new Uint8Array(0)), secret, 'the aggregator gets its (chunked) reply in its own inbox');
    t.equal(
      dec.decode(await requestLarge(trainer.nc, `${JOB}.ps.1.push.0`, secret)),
      'took 40000',
      'a chunked upload still works: the trainer publishes to the upload subject under allow_responses only',
    );
    await monitor.nc.flush();
    monitorSpy.unsubscribe();
    t.same(seenByMonitor, [], 'nothing of the exchanges reached the shared inbox');
    // A trainer cannot forge replies into the aggregator's inbox, nor read replies with the default prefix.
    const v = trainer.violation();
    trainer.nc.publish(`_INBOX_${JOB}-aggregator.forged`, enc.encode('forged reply'));
    await trainer.nc.flush();
    t.match(await v, { operation: 'publish', subject: `_INBOX_${JOB}-aggregator.forged` }, 'a trainer cannot publish into the aggregator’s inbox');
    const plain = await client(server, credsA.trainer, 'default');
    t.teardown(() => plain.nc.close());
    const refused = plain.violation();
    await t.rejects(requestLarge(plain.nc, `${JOB}.data.info`, new Uint8Array(0), { timeoutMs: 1500 }), 'a trainer using the shared _INBOX prefix gets no reply');
    t.match(await refused, { operation: 'subscription', subject: /^_INBOX\./ }, 'its subscription to _INBOX.<id> is refused');
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
      c.nc.publish(subject, enc.encode('forged'), { reply: '_INBOX.forged' });
      await c.nc.flush();
      const e = await v;
      t.match({ op: e.operation, subject: e.subject }, { op: 'publish', subject }, what);
    };
    // A listener that would see anything that got through the server.
    const leaked: string[] = [];
    const spy = aggregator.nc.subscribe(`${JOB}.ctl.checkpoint`, { callback: (_e, m) => void leaked.push(m.subject) });
    const spyData = dataShard.nc.subscribe(`${JOB}.data.*.next`, { callback: (_e, m) => void leaked.push(m.subject) });
    const spyColl = trainer.nc.subscribe(`${JOB}.coll.>`, { callback: (_e, m) => void leaked.push(m.subject) });
    const spyLoss = evaluator.nc.subscribe('train.loss', { callback: (_e, m) => void leaked.push(m.subject) });
    await Promise.all([aggregator.nc.flush(), dataShard.nc.flush(), trainer.nc.flush(), evaluator.nc.flush()]);

    await refusedSub(trainer, `${JOB}.ctl.config`, 'a trainer cannot answer ctl.config');
    await refusedSub(trainer, `${JOB}.ctl.checkpoint`, 'a trainer cannot take the replicas');
    await refusedSub(evaluator, `${JOB}.ctl.checkpoint`, 'an evaluator cannot take the replicas');
    await refusedSub(dataShard, `${JOB}.ps.*.push.*`, 'a data shard cannot subscribe to the pushes');
    await refusedSub(trainer, `${JOB}.ps.0.push.*`, 'a trainer cannot read other trainers’ pushes');
    await refusedSub(monitor, `${JOB}.>`, 'a monitor cannot read the job’s traffic');
    await refusedSub(evaluator, `${JOB}.data.0.next`, 'an evaluator cannot serve batches');
    for (const r of ['data-shard', 'aggregator', 'evaluator', 'monitor', 'launcher'] as const) {
      await refusedPub(roles[r], `${JOB}.ctl.checkpoint`, `${r} cannot write the checkpoint replica`);
    }
    await refusedPub(monitor, `${JOB}.coll.world.down`, 'a monitor cannot kill a mirrored group with a fake error');
    await refusedPub(evaluator, `${JOB}.coll.world.0.down`, 'an evaluator cannot speak in the collectives');
    await refusedPub(evaluator, `${JOB}.data.0.next`, 'an evaluator cannot take batches');
    await refusedPub(launcher, `${JOB}.data.0.next`, 'the launcher cannot take batches');
    await refusedPub(monitor, `${JOB}.ps.0.push.0`, 'a monitor cannot push gradients');
    await refusedPub(aggregator, `${JOB}.ps.0.push.0`, 'an aggregator cannot push gradients');
    await refusedPub(monitor, 'train.loss', 'a monitor cannot forge losses');
    await refusedPub(launcher, `${JOB}.hb.trainer-0`, 'the launcher cannot forge heartbeats');
    const anonymous = await client(server, undefined);
    t.teardown(() => anonymous.nc.close());
    await refusedPub(anonymous, 'train.loss', 'an anonymous client (the monitor user) cannot publish train.loss');
    await refusedPub(anonymous, `${JOB}.ctl.config`, 'an anonymous client cannot request the config');
    // Job B's trainer against job A, and job A's roles against job B.
    await refusedPub(other, `${JOB}.ps.0.push.0`, 'a trainer of job B cannot push to job A');
    await refusedPub(other, `${JOB}.coll.world.down`, 'a trainer of job B cannot break job A’s group');
    await refusedPub(other, `${JOB}.ctl.checkpoint`, 'a trainer of job B cannot write job A’s replica');
    await refusedSub(other, `${JOB}.coll.>`, 'a trainer of job B cannot listen to job A’s collectives');
    await refusedSub(aggregator, `${OTHER}.ctl.config`, 'job A’s aggregator cannot answer job B’s config');
    await refusedPub(trainer, `${OTHER}.data.0.next`, 'job A’s trainer cannot take job B’s batches');
    await refusedPub(launcher, `${OTHER}.eval.now`, 'job A’s launcher cannot drive job B');
    // A request whose publish is refused never reaches a responder: it fails (timeout) instead of being answered.
    await t.rejects(requestLarge(other.nc, `${JOB}.ctl.config`, new Uint8Array(0), { timeoutMs: 1000 }));

    await Promise.all([aggregator.nc.flush(), dataShard.nc.flush(), trainer.nc.flush(), evaluator.nc.flush()]);
    t.same(leaked, [], 'nothing forged reached job A’s actors');
    for (const s of [spy, spyData, spyColl, spyLoss]) s.unsubscribe();
  });
});
