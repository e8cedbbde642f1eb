// Per-rank collective permissions and the by-hand job's end (issue 13), on a REAL nats-server
// started with the launcher's config: only rank 0's user may publish on the root's subjects
// (`coll.*.down`, `down.<r>`) or serve the rendezvous store, each rank reads only its own
// `down.<r>` / `p2p.<r>`, and only an aggregator may announce `<job>.ctl.stop`.
import t from 'tap';
import { errors as natsErrors, type NatsConnection, type PermissionViolationError } from '@nats-io/nats-core';
import { NatsServer, connect, credentialsEnv, generateRoleCredentials, natsAuthConfig, ROLES, rolePermissions, type Role } from '../mod.ts';
import { collectivePermissions, trainerRankPermissions } from '../src/permissions.ts';

const enc = new TextEncoder();
const JOB = 'rq';

interface Client {
  readonly nc: NatsConnection;
  violation(): Promise<PermissionViolationError>;
}

async function client(server: NatsServer, env: { NATS_USER: string; NATS_PASSWORD: string; NATS_INBOX_PREFIX: string }): Promise<Client> {
  const nc = await connect({ servers: [server.url], user: env.NATS_USER, pass: env.NATS_PASSWORD, inboxPrefix: env.NATS_INBOX_PREFIX, reconnect: false });
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
  return { nc, violation: () => (seen.length > 0 ? Promise.resolve(seen.shift() as PermissionViolationError) : new Promise((r) => waiters.push(r))) };
}

/** Messages a connection receives on `subject` (collected until the test ends). */
function received(nc: NatsConnection, subject: string): string[] {
  const got: string[] = [];
  nc.subscribe(subject, { callback: (_e, m) => void got.push(`${m.subject}:${new TextDecoder().decode(m.data)}`) });
  return got;
}

t.test('collectivePermissions: the root alone on down and store, ring neighbours only on p2p', async (t) => {
  const r0 = collectivePermissions(JOB, 0);
  t.same(r0.publish, ['rq.coll.*.down', 'rq.coll.*.*.down', 'rq.coll.*.down.*', 'rq.coll.*.*.down.*', 'rq.coll.*.p2p.*.0', 'rq.coll.*.*.p2p.*.0']);
  t.same(r0.subscribe, ['rq.coll.*.up.*', 'rq.coll.*.*.up.*', 'rq.coll.*.store', 'rq.coll.*.*.store', 'rq.coll.*.p2p.0.*', 'rq.coll.*.*.p2p.0.*']);
  const r2 = collectivePermissions(JOB, 2);
  t.same(r2.publish, [
    'rq.coll.*.up.2',
    'rq.coll.*.*.up.2',
    'rq.coll.*.store',
    'rq.coll.*.*.store',
    'rq.coll.*.p2p.1.2',
    'rq.coll.*.*.p2p.1.2',
    'rq.coll.*.p2p.3.2',
    'rq.coll.*.*.p2p.3.2',
    'rq.coll.*.p2p.0.2',
    'rq.coll.*.*.p2p.0.2',
  ]);
  t.same(r2.subscribe, ['rq.coll.*.down', 'rq.coll.*.*.down', 'rq.coll.*.down.2', 'rq.coll.*.*.down.2', 'rq.coll.*.p2p.2.*', 'rq.coll.*.*.p2p.2.*']);
  t.notOk(trainerRankPermissions(JOB, 1).publish.allow.includes('rq.coll.>'), 'a rank user has no blanket coll.>');
  t.same(
    trainerRankPermissions(JOB, 1).publish.allow.filter((x) => x.includes('.push')),
    ['rq.ps.*.push.1'],
    'a rank user pushes only on its own rank’s subject',
  );
  t.same(
    rolePermissions(JOB).trainer.publish.allow.filter((x) => x.includes('.push')),
    ['rq.ps.*.push.*'],
  );
  t.ok(rolePermissions(JOB).trainer.publish.allow.includes('rq.coll.>'), 'the plain trainer user (started by hand) keeps it');
  t.throws(() => collectivePermissions(JOB, -1), /not a non-negative integer/);
  const p = rolePermissions(JOB);
  t.same(
    ROLES.filter((r) => p[r].publish.allow.includes('rq.ctl.stop')),
    ['aggregator'],
    'only aggregators (the config owner) announce the end',
  );
  t.same(
    ROLES.filter((r) => p[r].subscribe.allow.includes('rq.ctl.stop')),
    ['data-shard', 'aggregator', 'evaluator'],
    'those that exit on it hear it',
  );
});

t.test('a real nats-server: rank 1 cannot post as rank 0, read rank 2’s subjects or serve the store; a non-aggregator cannot end the job', async (t) => {
  const creds = generateRoleCredentials(JOB, { trainerRanks: 3 });
  const server = await NatsServer.start({ config: natsAuthConfig(JOB, creds) });
  t.teardown(() => server.stop());
  const rank = (r: number): Promise<Client> => client(server, credentialsEnv('trainer', creds, `trainer-${r}`));
  const role = (r: Role): Promise<Client> => client(server, credentialsEnv(r, creds));
  const [r0, r1, r2, data] = await Promise.all([rank(0), rank(1), rank(2), role('data-shard')]);
  const others = await Promise.all((['trainer', 'evaluator', 'monitor', 'launcher', 'data-shard'] as const).map(async (r) => [r, await role(r)] as const));
  const agg = await role('aggregator');
  t.teardown(() => Promise.all([r0, r1, r2, data, agg, ...others.map(([, c]) => c)].map((c) => c.nc.close())));

  // What rank 2 (a member) hears from the root.
  const at2 = received(r2.nc, 'rq.coll.world.g1.down');
  const at2own = received(r2.nc, 'rq.coll.world.g1.down.2');
  const atRoot = received(r0.nc, 'rq.coll.world.g1.up.*');
  await Promise.all([r0.nc.flush(), r2.nc.flush()]);

  // The root speaks; a member contributes: both allowed.
  r0.nc.publish('rq.coll.world.g1.down', enc.encode('result'));
  r0.nc.publish('rq.coll.world.g1.down.2', enc.encode('for-2'));
  r1.nc.publish('rq.coll.world.g1.up.1', enc.encode('contribution'));
  await Promise.all([r0.nc.flush(), r1.nc.flush()]);

  // Rank 1 posing as the root: the fake error on coll.world.down, with and without a generation.
  // And posing as another member: rank 2's contribution subject, a ring chunk "from" rank 2 or 0, a push as rank 2.
  for (const subject of ['rq.coll.world.down', 'rq.coll.world.g1.down', 'rq.coll.world.g1.down.2', 'rq.coll.world.g1.up.2', 'rq.coll.world.g1.p2p.2.0', 'rq.coll.world.g1.p2p.0.2', 'rq.ps.0.push.2']) {
    const v = r1.violation();
    r1.nc.publish(subject, enc.encode('forged error'));
    await r1.nc.flush();
    t.match(await v, { operation: 'publish', subject }, `rank 1 may not publish on ${subject}`);
  }
  for (const subject of ['rq.coll.world.g1.down.2', 'rq.coll.world.g1.p2p.2.*', 'rq.coll.world.g1.p2p.2.1', 'rq.coll.world.g1.store', 'rq.coll.world.g1.up.*', 'rq.coll.world.g1.up.2']) {
    const v = r1.violation();
    r1.nc.subscribe(subject);
    await r1.nc.flush();
    t.match(await v, { operation: 'subscription', subject }, `rank 1 may not subscribe to ${subject}`);
  }
  {
    const v = r1.violation();
    r1.nc.publish('rq.coll.world.g1.p2p.3.1', enc.encode('not my neighbour'));
    await r1.nc.flush();
    t.match(await v, { operation: 'publish', subject: 'rq.coll.world.g1.p2p.3.1' }, 'rank 1 sends ring chunks only to its neighbours');
  }
  const at2p2p = received(r2.nc, 'rq.coll.world.g1.p2p.2.*');
  await r2.nc.flush();
  r1.nc.publish('rq.coll.world.g1.p2p.2.1', enc.encode('chunk'));
  await r1.nc.flush();

  // The end of a by-hand job: a data shard listens; every role but the aggregator is refused.
  const stops = received(data.nc, 'rq.ctl.stop');
  await data.nc.flush();
  for (const [r, c] of others) {
    const v = c.violation();
    c.nc.publish('rq.ctl.stop', enc.encode(`stop from ${r}`));
    await c.nc.flush();
    t.match(await v, { operation: 'publish', subject: 'rq.ctl.stop' }, `${r} may not end the job`);
  }
  agg.nc.publish('rq.ctl.stop', enc.encode('stop from aggregator'));
  await agg.nc.flush();
  await data.nc.flush();
  await r2.nc.flush();
  await r0.nc.flush();
  await new Promise((r) => setTimeout(r, 200));

  t.same(at2, ['rq.coll.world.g1.down:result'], 'rank 2 heard the root and nobody else on down');
  t.same(at2own, ['rq.coll.world.g1.down.2:for-2'], 'and on its own down.2 only the root');
  t.same(atRoot, ['rq.coll.world.g1.up.1:contribution'], 'the root got the member’s contribution, and no forged one');
  t.same(at2p2p, ['rq.coll.world.g1.p2p.2.1:chunk'], 'rank 2 got its neighbour’s ring chunk');
  t.same(stops, ['rq.ctl.stop:stop from aggregator'], 'only the aggregator’s stop reached the data shard');
});
