// The c10d-shaped pieces: ReduceOp, the rendezvous Store (in memory and over NATS), a user store
// behind ProcessGroup.init, the backend registry, and reduce-at-root's checks. Real nats-server.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { PROTOCOL_VERSION, encodeMsg, storeRequestCodec } from '@actorflow/protocol';
import {
  CollectiveError,
  MemoryStore,
  NatsStore,
  ProcessGroup,
  ReduceOp,
  RendezvousError,
  StarProcessGroup,
  StoreError,
  backendNames,
  reduceInRankOrder,
  registerBackend,
  rendezvousPrefix,
  serveStore,
} from '../mod.ts';

t.test('ReduceOp: every op over three ranks, reduced at the root, the same bits everywhere', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const g = await Promise.all([0, 1, 2].map((rank) => ProcessGroup.init({ nc, job: 'ops', worldSize: 3, rank, timeoutMs: 10_000 })));
  const x = (r: number): Float32Array => new Float32Array([r + 1, -r, 0.5 * (r + 1), 2 - r]);
  const want: Record<ReduceOp, number[]> = {
    sum: [6, -3, 3, 3],
    avg: [2, -1, 1, 1],
    min: [1, -2, 0.5, 0],
    max: [3, 0, 1.5, 2],
    product: [6, 0, 0.75, 0],
  };
  for (const op of Object.values(ReduceOp)) {
    const got = await Promise.all(g.map((p) => p.allReduce(x(p.rank), op)));
    for (const r of got)
      t.same(
        [...r].map((v) => (Object.is(v, -0) ? 0 : v)),
        want[op],
        `${op} on every rank`,
      );
    t.same(got[0], reduceInRankOrder([x(0), x(1), x(2)], op), `${op} equals the rank-order reduction bit for bit`);
  }
  const r = await Promise.all(g.map((p) => p.reduce(x(p.rank), 1, ReduceOp.MAX)));
  t.same(r[1], new Float32Array([3, 0, 1.5, 2]));
  t.equal(r[0], undefined);
  const rs = await Promise.all(
    g.map((p) =>
      p.reduceScatter(
        Float32Array.from({ length: 6 }, (_, i) => i * (p.rank + 1)),
        ReduceOp.MIN,
      ),
    ),
  );
  t.same(
    rs.map((v) => [...v]),
    [
      [0, 1],
      [2, 3],
      [4, 5],
    ],
  );
  await t.rejects(g[0].allReduce(new Float32Array(1), 'median' as ReduceOp), /unknown ReduceOp 'median'/);
  t.throws(() => reduceInRankOrder([], ReduceOp.SUM), CollectiveError);
  // A reduce-at-root with a custom combine (what the mirrored strategy uses for sparse gradients).
  const joined = await Promise.all(g.map((p) => p.allReduceWith(new Uint8Array([p.rank + 1]), (parts) => Uint8Array.from(parts.flatMap((b) => [...b, 0])))));
  t.same([...joined[2]], [1, 0, 2, 0, 3, 0]);
  // A combine that throws fails the collective on every rank with its message.
  const failing = await Promise.allSettled(
    g.map((p) =>
      p.allReduceWith(new Uint8Array(0), () => {
        throw new Error('cannot combine these');
      }),
    ),
  );
  t.ok(
    failing.every((f) => f.status === 'rejected' && /cannot combine these/.test(String(f.reason))),
    'every rank sees the combine error',
  );
  // Ranks that call different collectives at the same sequence number are told so.
  const mixed = await Promise.allSettled([g[0].allGather(new Uint8Array(1)), g[1].allReduce(new Float32Array(1)), g[2].allReduce(new Float32Array(1))]);
  t.ok(mixed[1].status === 'rejected' && /called different collectives/.test(String(mixed[1].reason)), 'a reducing rank of a gathered collective fails clearly');
  await t.rejects(g[0].broadcast(new Uint8Array(1), 3), /root must be a rank of the group/);
  for (const p of g) p.destroy();
});

t.test('MemoryStore and NatsStore: set, get (waiting), add (idempotent per id), check, missing, wait, delete', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const mem = new MemoryStore();
  const sub = serveStore(nc, 'st.coll.world.store', mem);
  t.teardown(() => sub.unsubscribe());
  const client = new NatsStore(nc, 'st.coll.world.store', { timeoutMs: 3000 });
  for (const [name, s] of [
    ['memory', mem],
    ['nats', client],
  ] as const) {
    await s.set(`${name}/a`, new Uint8Array([1, 2]));
    t.same([...(await s.get(`${name}/a`))], [1, 2], `${name}: get`);
    const late = s.get(`${name}/late`, 3000);
    setTimeout(() => void s.set(`${name}/late`, new Uint8Array([7])), 100);
    t.same([...(await late)], [7], `${name}: get waits for the key`);
    t.equal(await s.add(`${name}/n`, 2), 2);
    t.equal(await s.add(`${name}/n`, -5), -3, `${name}: add`);
    t.equal(await s.check([`${name}/a`, `${name}/n`]), true);
    t.same(await s.missing([`${name}/a`, `${name}/zz`]), [`${name}/zz`], `${name}: missing`);
    await s.wait([`${name}/a`], 1000);
    await t.rejects(s.wait([`${name}/never`], 200), StoreError, `${name}: wait times out`);
    await t.rejects(s.get(`${name}/never`, 200), StoreError, `${name}: get times out`);
    t.equal(await s.delete(`${name}/a`), true);
    t.equal(await s.delete(`${name}/a`), false, `${name}: delete`);
    s.close();
  }
  // An add retried with the same id counts once (what makes NatsStore's retries safe).
  t.equal(mem.addOnce('once', 5, 'id-1'), 5);
  t.equal(mem.addOnce('once', 5, 'id-1'), 5, 'the same id again adds nothing');
  await t.rejects(client.add('memory/late', 1), /does not hold an integer counter|BAD_REQUEST/);
  // A malformed request is refused, not crashed on.
  const reply = await nc.request('st.coll.world.store', new Uint8Array([0xc1]), { timeout: 2000 });
  t.equal(reply.headers?.get('Af-Error'), 'BAD_REQUEST', 'malformed request → BAD_REQUEST');
  t.ok(storeRequestCodec.decode(storeRequestCodec.encode({ op: 'get', key: 'k' })), 'codec sanity');
  // Nobody serving: a clear StoreError after the deadline.
  await t.rejects(new NatsStore(nc, 'nobody.coll.world.store', { timeoutMs: 300 }).get('k'), /no answer to get within 300 ms/);
});

t.test('a user-provided Store replaces the NATS-hosted one; backends are chosen by name', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const store = new MemoryStore();
  const g = await Promise.all([0, 1].map((rank) => ProcessGroup.init({ nc, job: 'own', worldSize: 2, rank, store, timeoutMs: 5000 })));
  t.equal(g[0].backend, 'star');
  t.same(await store.missing([`${rendezvousPrefix({ job: 'own', group: 'world', generation: undefined })}/rank/1`]), [], 'the ranks met in the given store');
  await t.rejects(new NatsStore(nc, 'own.coll.world.store', { timeoutMs: 300 }).get('x'), StoreError, 'rank 0 serves no store of its own then');
  const sums = await Promise.all(g.map((p) => p.allReduce(new Float32Array([p.rank, 1]))));
  t.same(sums[1], new Float32Array([1, 2]));
  const subs = await Promise.all(g.map((p) => p.newGroup([1, 0], 'swap')));
  t.equal(subs[1]?.rank, 0, 'sub-groups meet in the same store');
  for (const p of [...g, ...subs]) p?.destroy();
  // The rendezvous checks rank 0's record: protocol version and world size, with what to do.
  const foreign = new MemoryStore();
  const prefix = rendezvousPrefix({ job: 'v', group: 'world', generation: 2 });
  await foreign.set(`${prefix}/world`, encodeMsg({ job: 'v', worldSize: 2, generation: 2, protocol: PROTOCOL_VERSION + 1, rank: 0 }));
  await t.rejects(ProcessGroup.init({ nc, job: 'v', worldSize: 2, rank: 1, generation: 2, store: foreign, timeoutMs: 2000 }), /protocol version .*run every rank from the same version/);
  await foreign.set(`${prefix}/world`, encodeMsg({ job: 'v', worldSize: 3, generation: 2, protocol: PROTOCOL_VERSION, rank: 0 }));
  await t.rejects(ProcessGroup.init({ nc, job: 'v', worldSize: 2, rank: 1, generation: 2, store: foreign, timeoutMs: 2000 }), /expects world size 2, rank 0 has 3/);
  await foreign.set(`${prefix}/world`, new Uint8Array([0xc1]));
  await t.rejects(ProcessGroup.init({ nc, job: 'v', worldSize: 2, rank: 1, generation: 2, store: foreign, timeoutMs: 2000 }), RendezvousError);
  // The backend registry: a second backend slots in by name.
  await t.rejects(ProcessGroup.init({ nc, job: 'b', worldSize: 1, rank: 0, backend: 'gloo' }), /unknown process-group backend 'gloo' \(known: star/);
  let made = 0;
  registerBackend('counted-star', (o) => {
    made++;
    return StarProcessGroup.init(o);
  });
  t.throws(() => registerBackend('star', (o) => StarProcessGroup.init(o)), RendezvousError);
  t.ok(backendNames().includes('counted-star'));
  const one = await ProcessGroup.init({ nc, job: 'b', worldSize: 1, rank: 0, backend: 'counted-star' });
  t.equal(made, 1);
  t.same(await one.allReduce(new Float32Array([4]), ReduceOp.AVG), new Float32Array([4]));
  one.destroy();
});
