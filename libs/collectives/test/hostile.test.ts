// Issue 13: a hostile (but credentialed) client on the bus of a running 2-rank group. It floods
// the group's subjects with forged errors, results and contributions — another job's, another
// generation's, another world size's, ranks that cannot have sent them, malformed ones — for the
// very sequence numbers the group is about to use. The group must finish every all-reduce with
// the right bits, and its counters must show the rejections. Real nats-server, real connections.
import t from 'tap';
import { NatsServer, connect, type NatsConnection } from '@actorflow/bus';
import { collectiveDownCodec, collectiveP2pCodec, collectiveUpCodec, encodeMsg } from '@actorflow/protocol';
import { ProcessGroup, ReduceOp, reduceInRankOrder } from '../mod.ts';

const STEPS = 25;
const tensor = (rank: number, i: number): Float32Array => Float32Array.from({ length: 2049 }, (_, k) => Math.sin(k * (rank + 1) + i) * 0.37);

function forge(spy: NatsConnection, job: string, base: string, generation: number | undefined): void {
  const gen = generation === undefined ? {} : { generation };
  const otherGen = { generation: (generation ?? 0) + 1 };
  for (let seq = 1; seq <= STEPS + 2; seq++) {
    const error = { kind: 'error' as const, seq, error: 'forged: the group must die', op: 'allReduce' };
    // Errors and results on the root's subjects, as the attack (`<job>.coll.world.down`).
    spy.publish(`${base}.down`, collectiveDownCodec.encode({ ...error, from: 0, job: 'another-job', worldSize: 2, ...gen }));
    spy.publish(`${base}.down`, collectiveDownCodec.encode({ ...error, from: 0, job, worldSize: 2, ...otherGen }));
    spy.publish(`${base}.down`, collectiveDownCodec.encode({ ...error, from: 1, job, worldSize: 2, ...gen }));
    spy.publish(`${base}.down.1`, collectiveDownCodec.encode({ ...error, from: 4, job, worldSize: 5, ...gen }));
    spy.publish(`${base}.down.1`, encodeMsg({ ...error, from: 7, job, worldSize: 2, ...gen }));
    spy.publish(`${base}.down`, collectiveDownCodec.encode({ kind: 'reduced', seq, from: 0, job: 'another-job', worldSize: 2, ...gen, data: new Uint8Array(8196) }));
    // Contributions to the root: another job's, another generation's, "rank 0"'s, an unknown rank's.
    const data = new Uint8Array(new Float32Array(2049).fill(1e30).buffer);
    spy.publish(`${base}.up.1`, collectiveUpCodec.encode({ kind: 'data', rank: 1, seq, ack: seq - 1, job: 'another-job', worldSize: 2, ...gen, data }));
    spy.publish(`${base}.up.1`, collectiveUpCodec.encode({ kind: 'data', rank: 1, seq, ack: seq - 1, job, worldSize: 2, ...otherGen, data }));
    spy.publish(`${base}.up.0`, collectiveUpCodec.encode({ kind: 'data', rank: 0, seq, ack: seq - 1, job, worldSize: 2, ...gen, data }));
    spy.publish(`${base}.up.9`, encodeMsg({ kind: 'data', rank: 9, seq, ack: seq - 1, job, worldSize: 2, ...gen, data }));
    // Rank 1's contribution, every field right, on a subject that is not rank 1's (per-rank users let
    // only rank r publish on up.<r> and p2p.<to>.<r>): another member posing as rank 1.
    spy.publish(`${base}.up.0`, collectiveUpCodec.encode({ kind: 'data', rank: 1, seq, ack: seq - 1, job, worldSize: 2, ...gen, data }));
    spy.publish(`${base}.p2p.1.7`, collectiveP2pCodec.encode({ kind: 'chunk', from: 0, seq, phase: 'rs', step: 0, job, worldSize: 2, ...gen, data: new Float32Array(4) }));
  }
}

for (const generation of [undefined, 3]) {
  t.test(`forged messages from non-members never kill or corrupt a 2-rank group (generation ${generation ?? 'none'})`, async (t) => {
    const server = await NatsServer.start();
    t.teardown(() => server.stop());
    const ncs = await Promise.all([0, 1, 2].map(() => connect({ servers: [server.url] })));
    t.teardown(() => Promise.all(ncs.map((nc) => nc.close())));
    const [nc0, nc1, spy] = ncs;
    const job = 'victim';
    const base = generation === undefined ? `${job}.coll.world` : `${job}.coll.world.g${generation}`;
    const lines: string[] = [];
    const g = await Promise.all(
      [nc0, nc1].map((nc, rank) => ProcessGroup.init({ nc, job, worldSize: 2, rank, timeoutMs: 20_000, log: (l) => lines.push(l), ...(generation === undefined ? {} : { generation }) })),
    );
    t.teardown(() => g.forEach((p) => p.destroy()));
    // The flood starts before the first collective and goes on through all of them.
    let flooding = true;
    const flood = (async () => {
      while (flooding) {
        forge(spy, job, base, generation);
        await spy.flush();
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const seen = (i: number): number => g[i].stats().foreign + g[i].stats().malformed;
    while (seen(0) === 0 || seen(1) === 0) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < STEPS; i++) {
      const op = i % 2 === 0 ? ReduceOp.SUM : ReduceOp.MAX;
      const got = await Promise.all(g.map((p) => p.allReduce(tensor(p.rank, i), op)));
      const want = reduceInRankOrder([tensor(0, i), tensor(1, i)], op);
      t.same(got[0], want, `all-reduce ${i} (${op}) is right on rank 0`);
      t.same(got[1], want, `all-reduce ${i} (${op}) is right on rank 1`);
    }
    flooding = false;
    await flood;
    const [s0, s1] = g.map((p) => p.stats());
    t.ok(
      s1.rejected.job > 0 && s1.rejected.generation > 0 && s1.rejected.rank > 0 && s1.rejected.worldSize > 0,
      `rank 1 rejected forged root messages by job, generation, rank and world size: ${JSON.stringify(s1.rejected)}`,
    );
    t.ok(
      s0.rejected.job > 0 && s0.rejected.generation > 0 && s0.rejected.rank > 0 && s0.rejected.subject > 0,
      `the root rejected forged contributions by job, generation, rank and subject: ${JSON.stringify(s0.rejected)}`,
    );
    t.ok(s1.rejected.subject > 0, `rank 1 rejected a ring chunk claiming rank 0 on another rank's subject: ${JSON.stringify(s1.rejected)}`);
    t.ok(s0.malformed > 0 && s1.malformed > 0, 'ranks outside the world are refused by the codec (counted as malformed)');
    t.equal(s1.foreign, s1.rejected.job + s1.rejected.generation + s1.rejected.rank + s1.rejected.worldSize + s1.rejected.subject, 'every foreign message of rank 1 has its reason');
    t.ok(
      lines.some((l) => /claiming to come from rank \d+ of job 'another-job'.*not a member/.test(l)),
      'a rejection is logged with the claimed sender',
    );
    // The group is alive and well after the flood.
    const after = await Promise.all(g.map((p) => p.allReduce(new Float32Array([p.rank + 1]))));
    t.same([after[0][0], after[1][0]], [3, 3]);
  });
}
