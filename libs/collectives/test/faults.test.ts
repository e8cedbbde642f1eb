// The process group under faults, on a real nats-server: the broker killed and restarted on the
// same port mid-collectives, duplicate and forged messages, generations that never mix, and
// timeouts that still name the silent rank.
import t from 'tap';
import { NatsServer, connect, type NatsConnection } from '@actorflow/bus';
import { collectiveDownCodec, collectiveP2pCodec, collectiveUpCodec, encodeMsg } from '@actorflow/protocol';
import { CollectiveError, CollectiveTimeoutError, ProcessGroup, RendezvousError, type GroupOptions } from '../mod.ts';

async function connections(url: string, n: number): Promise<NatsConnection[]> {
  return Promise.all(Array.from({ length: n }, () => connect({ servers: [url], maxReconnectAttempts: -1, reconnect: true })));
}

function group(nc: NatsConnection, o: Omit<GroupOptions, 'nc'>): Promise<ProcessGroup> {
  return ProcessGroup.init({ nc, log: () => undefined, ...o });
}

const bytesOf = (rank: number, i: number, n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (rank * 31 + i * 7 + k) & 0xff);
const vecOf = (rank: number, i: number): Float32Array => Float32Array.from({ length: 3001 }, (_, k) => Math.sin(k * (rank + 1) + i) * 0.25);

t.test('a broker killed and restarted on the same port mid-collectives: every collective completes, right and in order', async (t) => {
  const first = await NatsServer.start({ maxPayload: 16 * 1024 });
  const port = first.port;
  let server = first;
  t.teardown(() => server.stop());
  const W = 3;
  const ncs = await connections(server.url, W);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const g = await Promise.all(ncs.map((nc, rank) => group(nc, { job: 'outage', worldSize: W, rank, timeoutMs: 30_000, resendMs: 1000 })));
  const ROUNDS = 40;
  let startedRound = 0;
  let outage: Promise<void> | undefined;
  const outageAt = 8;
  // Reference results, computed without the network: rank-order sums (the star), and the ring run
  // once on a healthy group below.
  const run = async (p: ProcessGroup): Promise<{ gathered: Uint8Array[][]; bcast: Uint8Array[]; star: Float32Array[]; ring: Float32Array[] }> => {
    const out = { gathered: [] as Uint8Array[][], bcast: [] as Uint8Array[], star: [] as Float32Array[], ring: [] as Float32Array[] };
    for (let i = 0; i < ROUNDS; i++) {
      if (p.rank === 0) {
        startedRound = i;
        if (i === outageAt && outage === undefined) {
          // Kill -9 the broker while the ranks are mid-round, bring it back on the same port 2 s later.
          outage = (async () => {
            server.kill();
            await server.stop();
            await new Promise((r) => setTimeout(r, 2000));
            server = await NatsServer.start({ port, maxPayload: 16 * 1024 });
          })();
        }
      }
      out.gathered.push(await p.allGather(bytesOf(p.rank, i, i % 4 === 0 ? 50_000 : 40)));
      out.bcast.push(await p.broadcast(bytesOf(p.rank, i, 20), i % W));
      out.ring.push(await p.allReduceRing(vecOf(p.rank, i)));
      out.star.push(await p.allReduce(vecOf(p.rank, i)));
    }
    return out;
  };
  const results = await Promise.all(g.map(run));
  await outage;
  t.ok(startedRound === ROUNDS - 1, 'all rounds ran');
  const reference = await NatsServer.start();
  t.teardown(() => reference.stop());
  const [rnc] = await connections(reference.url, 1);
  t.teardown(() => rnc.close());
  const healthy = await Promise.all(Array.from({ length: W }, (_, rank) => group(rnc, { job: 'ref', worldSize: W, rank, timeoutMs: 10_000 })));
  let wrong = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const ring = await Promise.all(healthy.map((p) => p.allReduceRing(vecOf(p.rank, i))));
    for (let rank = 0; rank < W; rank++) {
      const r = results[rank];
      const expectGather = Array.from({ length: W }, (_, q) => bytesOf(q, i, i % 4 === 0 ? 50_000 : 40));
      if (!r.gathered[i].every((b, q) => Buffer.compare(b, expectGather[q]) === 0)) wrong++;
      if (Buffer.compare(r.bcast[i], bytesOf(i % W, i, 20)) !== 0) wrong++;
      const star = new Float32Array(3001);
      for (let q = 0; q < W; q++) {
        const v = vecOf(q, i);
        for (let k = 0; k < star.length; k++) star[k] = Math.fround(star[k] + v[k]);
      }
      if (!r.star[i].every((v, k) => v === star[k])) wrong++;
      if (!r.ring[i].every((v, k) => v === ring[rank][k])) wrong++;
    }
  }
  t.equal(wrong, 0, 'every all-gather, broadcast, star and ring all-reduce has the bits of a healthy run, round by round');
  const stats = g.map((p) => p.stats());
  t.comment(JSON.stringify(stats));
  t.ok(
    stats.every((s) => s.reconnects >= 1),
    'every rank saw the reconnect',
  );
  t.ok(stats.reduce((s, x) => s + x.resent, 0) > 0, 'something in flight was sent again');
  for (const p of [...g, ...healthy]) p.destroy();
});

t.test('duplicate and forged messages break nothing; foreign world sizes and generations are ignored', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const [nc, spy] = await connections(server.url, 2);
  t.teardown(() => Promise.all([nc.close(), spy.close()]));
  const lines: string[] = [];
  const g = await Promise.all([0, 1].map((rank) => ProcessGroup.init({ nc, job: 'forge', worldSize: 2, rank, generation: 3, timeoutMs: 5000, log: (l) => lines.push(l) })));
  const base = 'forge.coll.world.g3';
  const first = await Promise.all(g.map((p) => p.allGather(new Uint8Array([p.rank + 1]))));
  t.same(
    first[1].map((b) => [...b]),
    [[1], [2]],
  );
  // A resend of rank 1's finished contribution, with other bytes: rank 0 answers with the kept result.
  spy.publish(`${base}.up.1`, collectiveUpCodec.encode({ kind: 'data', job: 'forge', rank: 1, seq: 1, ack: 0, worldSize: 2, generation: 3, data: new Uint8Array([99]) }));
  // Garbage, a contribution claiming rank 0, a rank past the world size, a seq far ahead.
  spy.publish(`${base}.up.1`, new Uint8Array([0xc1, 1, 2]));
  spy.publish(`${base}.up.0`, collectiveUpCodec.encode({ kind: 'data', job: 'forge', rank: 0, seq: 2, ack: 0, worldSize: 2, generation: 3, data: new Uint8Array([7]) }));
  spy.publish(`${base}.up.5`, encodeMsg({ kind: 'data', job: 'forge', rank: 5, seq: 2, ack: 0, worldSize: 2, generation: 3, data: new Uint8Array([7]) }));
  spy.publish(`${base}.up.1`, collectiveUpCodec.encode({ kind: 'data', job: 'forge', rank: 1, seq: 1000, ack: 0, worldSize: 2, generation: 3, data: new Uint8Array([7]) }));
  spy.publish(`${base}.up.1`, collectiveUpCodec.encode({ kind: 'ask', job: 'forge', rank: 1, seq: 2, ack: 1, worldSize: 2, generation: 2 }));
  // Errors and results for the next collective naming another world size or generation.
  spy.publish(`${base}.down`, collectiveDownCodec.encode({ kind: 'error', job: 'forge', from: 0, seq: 2, error: 'forged', worldSize: 3, generation: 3 }));
  spy.publish(`${base}.down`, collectiveDownCodec.encode({ kind: 'error', job: 'forge', from: 0, seq: 2, error: 'forged', worldSize: 2, generation: 2 }));
  spy.publish(`${base}.down.1`, collectiveDownCodec.encode({ kind: 'result', job: 'forge', from: 0, seq: 2, parts: [new Uint8Array(1), new Uint8Array(1)], worldSize: 2 }));
  spy.publish(`${base}.down`, new Uint8Array([1, 2, 3]));
  // Ring chunks from a rank that is not the neighbour, of another generation, and malformed.
  spy.publish(`${base}.p2p.1.1`, collectiveP2pCodec.encode({ kind: 'chunk', job: 'forge', from: 1, seq: 3, phase: 'rs', step: 0, worldSize: 2, generation: 3, data: new Float32Array(1) }));
  spy.publish(`${base}.p2p.1.0`, collectiveP2pCodec.encode({ kind: 'chunk', job: 'forge', from: 0, seq: 3, phase: 'rs', step: 0, worldSize: 2, generation: 1, data: new Float32Array(1) }));
  spy.publish(`${base}.p2p.0.1`, new Uint8Array(0));
  await spy.flush();
  await nc.flush();
  const second = await Promise.all(g.map((p) => p.allGather(new Uint8Array([p.rank + 10]))));
  t.same(
    second.map((r) => r.map((b) => [...b])),
    [
      [[10], [11]],
      [[10], [11]],
    ],
    'the next collective is untouched',
  );
  const ring = await Promise.all(g.map((p) => p.allReduceRing(new Float32Array([p.rank, 1, 2, 3]))));
  t.same([...ring[0]], [1, 2, 4, 6]);
  t.same([...ring[1]], [1, 2, 4, 6]);
  // A late copy of a ring chunk already consumed, and one far ahead: both ignored (and acknowledged).
  spy.publish(`${base}.p2p.1.0`, collectiveP2pCodec.encode({ kind: 'chunk', job: 'forge', from: 0, seq: 3, phase: 'rs', step: 0, worldSize: 2, generation: 3, data: new Float32Array(2) }));
  spy.publish(`${base}.p2p.1.0`, collectiveP2pCodec.encode({ kind: 'chunk', job: 'forge', from: 0, seq: 3000, phase: 'rs', step: 0, worldSize: 2, generation: 3, data: new Float32Array(2) }));
  await spy.flush();
  const after = await Promise.all(g.map((p) => p.allReduceRing(new Float32Array([p.rank, 1, 2, 3]))));
  t.same([...after[1]], [1, 2, 4, 6], 'the ring after them is untouched');
  const [s0, s1] = g.map((p) => p.stats());
  t.ok(s0.duplicates >= 1 && s1.duplicates >= 1, 'the resent contribution was answered from the cache and ignored by its rank');
  t.ok(s0.malformed >= 2 && s1.malformed >= 1, 'malformed messages counted');
  t.ok(s0.foreign >= 3 && s1.foreign >= 6, 'foreign messages counted');
  t.ok(
    lines.some((l) => /malformed/.test(l)),
    'and logged',
  );
  t.ok(lines.length <= 4, `logging is rate limited (${lines.length} lines)`);
  for (const p of g) p.destroy();
});

t.test('generations: a re-formed group, even a smaller one, never mixes with the old one', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const [nc] = await connections(server.url, 1);
  t.teardown(() => nc.close());
  const old = await Promise.all([0, 1, 2].map((rank) => group(nc, { job: 'elastic', worldSize: 3, rank, generation: 0, timeoutMs: 1500 })));
  // Rank 1 of generation 0 "died"; ranks 0 and 2 of the old group are still running collectives
  // while the survivors re-form as generation 1 with two ranks.
  const oldPending = Promise.allSettled([old[0], old[2]].map((p) => p.allGather(new Uint8Array([0xee]))));
  const fresh = await Promise.all([0, 1].map((rank) => group(nc, { job: 'elastic', worldSize: 2, rank, generation: 1, timeoutMs: 5000 })));
  for (let i = 0; i < 5; i++) {
    const r = await Promise.all(fresh.map((p) => p.allGather(new Uint8Array([i, p.rank]))));
    t.same(
      r[1].map((b) => [...b]),
      [
        [i, 0],
        [i, 1],
      ],
      `generation 1 collective ${i}`,
    );
  }
  const oldOutcome = await oldPending;
  t.ok(
    oldOutcome.every((o) => o.status === 'rejected' && o.reason instanceof CollectiveTimeoutError && /rank\(s\) 1 sent nothing/.test((o.reason as Error).message)),
    'the old group fails on its own, naming its dead rank',
  );
  t.same(
    fresh.map((p) => p.stats().foreign),
    [0, 0],
    'the new group never even saw the old traffic',
  );
  // No generation and generation 0 are different groups too.
  await t.rejects(
    Promise.all([group(nc, { job: 'mixed', worldSize: 2, rank: 0, timeoutMs: 500 }), group(nc, { job: 'mixed', worldSize: 2, rank: 1, generation: 0, timeoutMs: 500 })]),
    CollectiveTimeoutError,
  );
  await t.rejects(group(nc, { job: 'x', worldSize: 1, rank: 0, generation: -1 }), /generation must be an integer/);
  for (const p of [...old, ...fresh]) p.destroy();
});

t.test('timeouts name the silent rank; a broker that never returns ends every wait', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const ncs = await connections(server.url, 3);
  t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
  const g = await Promise.all(ncs.map((nc, rank) => group(nc, { job: 'silent', worldSize: 3, rank, timeoutMs: 800, resendMs: 200 })));
  // Rank 2 is alive (and resending nothing) but never calls the collective.
  const r = await Promise.allSettled([g[0], g[1]].map((p) => p.allGather(new Uint8Array([1]))));
  for (const [k, o] of r.entries()) {
    t.ok(o.status === 'rejected' && o.reason instanceof CollectiveTimeoutError, `rank ${k} times out`);
    t.match(o.status === 'rejected' ? (o.reason as Error).message : '', /allGather #1: rank\(s\) 2 sent nothing within 800 ms/);
  }
  // Rank 2 now arrives at #1, late: rank 0 has declared #1 failed and tells it so.
  await t.rejects(g[2].allGather(new Uint8Array([1])), /#1: rank\(s\) 2 sent nothing/);
  // The ring: rank 1's left neighbour (rank 0) never joins.
  const ring = await Promise.allSettled([g[1], g[2]].map((p) => p.allReduceRing(new Float32Array(9))));
  t.match(ring[0].status === 'rejected' ? (ring[0].reason as Error).message : '', /allReduceRing #2: rank\(s\) 0 sent nothing/);
  // The broker goes away for good: every wait still ends.
  await server.stop();
  const gone = await Promise.allSettled(g.map((p) => p.allGather(new Uint8Array([2]))));
  t.ok(
    gone.every((o) => o.status === 'rejected' && o.reason instanceof CollectiveTimeoutError),
    'all ranks time out while the broker is gone',
  );
  // destroy() ends a wait too, and a closed connection fails fast.
  const pending = g[1].allGather(new Uint8Array([3]));
  const pendingRing = g[1].allReduceRing(new Float32Array(4));
  g[1].destroy();
  await t.rejects(pending, CollectiveError);
  await t.rejects(pendingRing, /destroyed while waiting for a neighbour/);
  await t.rejects(g[1].allGather(new Uint8Array(1)), /destroyed/);
  await t.rejects(g[1].allReduceRing(new Float32Array(1)), /destroyed/);
  await ncs[2].close();
  await t.rejects(g[2].allGather(new Uint8Array(1)), /NATS connection of rank 2 is closed/);
  for (const p of g) p.destroy();
});

t.test('a connection closed under a waiting collective: resends fail quietly, the timeout still ends the wait', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const ncs = await connections(server.url, 2);
  t.teardown(() => ncs[0].close());
  const lines: string[] = [];
  const g = await Promise.all(ncs.map((nc, rank) => ProcessGroup.init({ nc, job: 'closed', worldSize: 2, rank, timeoutMs: 600, resendMs: 50, log: (l) => lines.push(l) })));
  const waiting = g[1].allGather(new Uint8Array([1]));
  await ncs[1].close();
  await t.rejects(waiting, CollectiveTimeoutError);
  t.ok(
    lines.some((l) => /could not publish/.test(l)),
    'the failed resend is reported',
  );
  for (const p of g) p.destroy();
});

t.test('rendezvous refuses a rank of another world size; a restarted rank cannot slip into a running group', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const [nc] = await connections(server.url, 1);
  t.teardown(() => nc.close());
  const r0 = group(nc, { job: 'size', worldSize: 2, rank: 0, timeoutMs: 5000 });
  await t.rejects(group(nc, { job: 'size', worldSize: 3, rank: 1, timeoutMs: 5000 }), RendezvousError);
  const r1 = group(nc, { job: 'size', worldSize: 2, rank: 1, timeoutMs: 5000 });
  const g = await Promise.all([r0, r1]);
  for (let i = 0; i < 3; i++) await Promise.all(g.map((p) => p.barrier()));
  // Rank 1 "restarts" in the same generation: it is welcomed, but its collective #1 is long gone.
  const again = await group(nc, { job: 'size', worldSize: 2, rank: 1, timeoutMs: 5000 });
  await t.rejects(again.allGather(new Uint8Array(1)), /finished long ago.*new generation/);
  await t.rejects(group(nc, { job: 'size', worldSize: 2, rank: 1, resendMs: 0 }), /resendMs must be positive/);
  for (const p of [...g, again]) p.destroy();
});

t.test('a contribution rank 0 confirmed is not resent in full while a slow rank keeps the collective waiting', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const [nc, spy] = await connections(server.url, 2);
  t.teardown(() => Promise.all([nc.close(), spy.close()]));
  const sizes: number[] = [];
  const sub = spy.subscribe('slow.coll.world.up.1', { callback: (_e, m) => void sizes.push(m.data.length) });
  await spy.flush();
  const g = await Promise.all([0, 1, 2].map((rank) => group(nc, { job: 'slow', worldSize: 3, rank, timeoutMs: 10_000, resendMs: 100 })));
  sizes.length = 0;
  const big = new Uint8Array(200_000).fill(7);
  const fast = [g[0], g[1]].map((p) => p.allGather(p.rank === 1 ? big : new Uint8Array(1)));
  // Rank 2 contributes once rank 1 has asked (not resent) a few times.
  while (g[1].stats().resent < 3) await new Promise((r) => setTimeout(r, 50));
  const all = await Promise.all([...fast, g[2].allGather(new Uint8Array(2))]);
  t.equal(all[2][1].length, 200_000);
  t.equal(sizes.filter((n) => n > 100_000).length, 1, 'the 200 kB contribution travelled once');
  t.ok(sizes.filter((n) => n < 200).length >= 3, 'the resends were small asks');
  sub.unsubscribe();
  for (const p of g) p.destroy();
});

t.test("rank 0's resend request (sent when it reconnects) makes a waiting rank send its contribution again at once", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const [nc, spy] = await connections(server.url, 2);
  t.teardown(() => Promise.all([nc.close(), spy.close()]));
  // Periodic resends far beyond the test: only the request can cause one.
  const g = await Promise.all([0, 1].map((rank) => group(nc, { job: 'nudge', worldSize: 2, rank, timeoutMs: 60_000, resendMs: 60_000 })));
  const waiting = g[1].allGather(new Uint8Array([5]));
  const before = g[1].stats().resent;
  spy.publish('nudge.coll.world.down', collectiveDownCodec.encode({ kind: 'progress', job: 'nudge', from: 0, seq: 1, have: [0], resend: true, worldSize: 2 }));
  // A request listing the rank itself changes nothing.
  spy.publish('nudge.coll.world.down', collectiveDownCodec.encode({ kind: 'progress', job: 'nudge', from: 0, seq: 1, have: [0, 1], resend: true, worldSize: 2 }));
  await spy.flush();
  for (let k = 0; k < 100 && g[1].stats().resent === before; k++) await new Promise((r) => setTimeout(r, 20));
  t.equal(g[1].stats().resent, before + 1, 'resent once, on request');
  for (let k = 0; k < 100 && g[0].stats().duplicates === 0; k++) await new Promise((r) => setTimeout(r, 20));
  t.equal(g[0].stats().duplicates, 1, 'rank 0 kept the first copy');
  const [, r1] = await Promise.all([g[0].allGather(new Uint8Array([4])), waiting]);
  t.same(
    r1.map((b) => [...b]),
    [[4], [5]],
  );
  for (const p of g) p.destroy();
});
