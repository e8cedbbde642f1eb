import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { CollectiveTimeoutError, ProcessGroup, RendezvousError } from '../mod.ts';

t.test('rendezvous, all-gather, all-reduce in rank order, broadcast, barrier; large tensors chunk', async (t) => {
  const server = await NatsServer.start({ maxPayload: 32 * 1024 });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  // Rank 2 starts first: rendezvous must wait for the others.
  const late = [2, 0, 1].map((rank, k) => new Promise<ProcessGroup>((r) => setTimeout(() => r(ProcessGroup.init({ nc, job: 'g', worldSize: 3, rank, timeoutMs: 5000 })), k * 100)).then((p) => p));
  const byStart = await Promise.all(late);
  const g = [byStart[1], byStart[2], byStart[0]];
  const gathered = await Promise.all(g.map((p) => p.allGather(new Uint8Array([p.rank, p.rank]))));
  t.same(
    gathered[2].map((b) => [...b]),
    [
      [0, 0],
      [1, 1],
      [2, 2],
    ],
  );
  const big = 300_000;
  const sums = await Promise.all(g.map((p) => p.allReduce(new Float32Array(big).fill(p.rank + 0.5))));
  t.equal(sums[1].length, big);
  t.equal(sums[1][12345], 0.5 + 1.5 + 2.5);
  t.same(sums[0], sums[2], 'identical on every rank');
  const b = await Promise.all(g.map((p) => p.broadcast(new Uint8Array([9, p.rank]), 1)));
  t.ok(b.every((x) => x[0] === 9 && x[1] === 1));
  await Promise.all(g.map((p) => p.barrier()));
  await t.rejects(Promise.all(g.map((p) => p.allReduce(new Float32Array(p.rank + 1)))), /different lengths/);
  for (const p of g) p.destroy();
});

t.test('bad arguments, a missing rank at rendezvous, a silent rank later', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  await t.rejects(ProcessGroup.init({ nc, job: 'b', worldSize: 2, rank: 2 }), RendezvousError);
  await t.rejects(ProcessGroup.init({ nc, job: 'b', worldSize: 0, rank: 0 }), /world size/);
  await t.rejects(ProcessGroup.init({ nc, job: 'alone', worldSize: 2, rank: 0, timeoutMs: 300 }), /rank\(s\) 1 sent nothing/);
  await t.rejects(ProcessGroup.init({ nc, job: 'orphan', worldSize: 2, rank: 1, timeoutMs: 300 }), CollectiveTimeoutError);
  const [a, b] = await Promise.all([0, 1].map((rank) => ProcessGroup.init({ nc, job: 's', worldSize: 2, rank, timeoutMs: 300 })));
  await t.rejects(a.barrier(), /barrier #1: rank\(s\) 1 sent nothing/);
  // b's first collective is the same #1 that rank 0 already declared failed.
  await t.rejects(b.allGather(new Uint8Array(1)), /#1: rank\(s\) 1 sent nothing/);
  await t.rejects(b.allGather(new Uint8Array(1)), /rank\(s\) 0 sent nothing/);
  a.destroy();
  b.destroy();
});

t.test('reduce, gather, scatter, reduce-scatter, sub-groups and async forms', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const g = await Promise.all([0, 1, 2].map((rank) => ProcessGroup.init({ nc, job: 'ops', worldSize: 3, rank, timeoutMs: 5000 })));
  const reduced = await Promise.all(g.map((p) => p.reduce(new Float32Array([p.rank, 1]), 2)));
  t.same(reduced[2], new Float32Array([3, 3]));
  t.equal(reduced[0], undefined);
  const gathered = await Promise.all(g.map((p) => p.gather(new Uint8Array([p.rank]), 1)));
  t.same(
    gathered[1]?.map((b) => b[0]),
    [0, 1, 2],
  );
  const scattered = await Promise.all(g.map((p) => p.scatter(p.rank === 0 ? [new Uint8Array([10]), new Uint8Array([11]), new Uint8Array([12])] : undefined, 0)));
  t.same(
    scattered.map((b) => b[0]),
    [10, 11, 12],
  );
  const rs = await Promise.all(g.map((p) => p.reduceScatter(Float32Array.from({ length: 7 }, (_, i) => i))));
  t.same(
    rs.map((x) => [...x]),
    [
      [0, 3],
      [6, 9],
      [12, 15, 18],
    ],
  );
  const works = g.map((p) => p.start((q) => q.allReduce(new Float32Array([1]))));
  t.same(
    (await Promise.all(works.map((w) => w.wait()))).map((x) => x[0]),
    [3, 3, 3],
  );
  const subs = await Promise.all(g.map((p) => p.newGroup([2, 0])));
  t.equal(subs[1], undefined, 'rank 1 is not a member');
  t.equal(subs[2]?.rank, 0, 'members are renumbered in the order given');
  const inSub = await Promise.all([subs[2], subs[0]].map((p) => (p as ProcessGroup).allGather(new Uint8Array([p?.rank ?? 9]))));
  t.same(
    inSub[0].map((b) => b[0]),
    [0, 1],
  );
  await t.rejects(g[0].newGroup([0, 0]), /distinct ranks/);
  await t.rejects(Promise.all(g.map((p) => p.scatter(p.rank === 0 ? [new Uint8Array(1)] : undefined))), /root needs 3 parts/);
  for (const p of [...g, subs[0], subs[2]]) p?.destroy();
});

t.test('ring all-reduce equals the star sum (to float rounding) and is reproducible', async (t) => {
  const server = await NatsServer.start({ maxPayload: 16 * 1024 });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  for (const W of [1, 2, 3, 4]) {
    const g = await Promise.all(Array.from({ length: W }, (_, rank) => ProcessGroup.init({ nc, job: `ring${W}`, worldSize: W, rank, timeoutMs: 5000 })));
    const input = (r: number): Float32Array => Float32Array.from({ length: 50_003 }, (_, i) => Math.sin(i * (r + 1)) * 0.1);
    const ring = await Promise.all(g.map((p) => p.allReduceRing(input(p.rank))));
    const again = await Promise.all(g.map((p) => p.allReduceRing(input(p.rank))));
    const star = await Promise.all(g.map((p) => p.allReduce(input(p.rank))));
    t.ok(
      ring.every((x) => x.every((v, i) => v === ring[0][i])),
      `W=${W}: every rank has the same bits`,
    );
    t.same(again[0], ring[0], `W=${W}: reproducible`);
    t.ok(
      ring[0].every((v, i) => Math.abs(v - star[0][i]) < 1e-6),
      `W=${W}: equals the star sum`,
    );
    for (const p of g) p.destroy();
  }
  const [a] = await Promise.all([ProcessGroup.init({ nc, job: 'ringdead', worldSize: 2, rank: 0, timeoutMs: 300 }).catch((e: Error) => e)]);
  t.ok(a instanceof Error, 'rendezvous without the peer times out');
});
