// A hostile but credentialed client pushes bad gradients to a live parameter shard over a real
// nats-server: NaN rows, duplicate rows, a forged paramVersion of 2^53, rows of another shard,
// an unknown dense name, an oversize upload, a push without a reply subject. Every one must be
// rejected (a coded remote error) and counted by reason and sender; the parameters stay finite
// and bit-for-bit unchanged; an honest trainer's push afterwards still applies.
import t from 'tap';
import { NatsServer, RemoteError, connect, requestLarge } from '@actorflow/bus';
import { BiasedMF } from '@actorflow/models';
import { gradientCodec, subjects } from '@actorflow/protocol';
import { ParameterShard, PsClient, mergeSnapshots, nonFiniteParam, ownerOfDense, ownerOfRow, servePsShard, type ShardStats } from '@actorflow/strategies';

const model = (): BiasedMF => new BiasedMF({ numUsers: 200, numItems: 100, dim: 8, initStd: 0.1, globalMean: 3.5 });
const optimizer = { name: 'adam', lr: 0.01, l2: 1e-4 } as const;
const job = 'hostile';

t.test('bad pushes to a live shard are rejected whole, counted, and change nothing', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const shardConn = await connect({ servers: [server.url] });
  const hostile = await connect({ servers: [server.url], name: 'hostile' });
  const shards = [0, 1].map((k) => new ParameterShard({ model: model(), shard: k, of: 2, seed: 5, optimizer, log: () => undefined }));
  const subs = shards.flatMap((s) => servePsShard(shardConn, job, s, { maxRequestBytes: 1024 * 1024 }));
  t.teardown(async () => {
    for (const s of subs) s.unsubscribe();
    await hostile.close();
    await shardConn.close();
    await server.stop();
  });
  await shardConn.flush();
  const client = new PsClient(hostile, { job, shards: 2 });
  const before = mergeSnapshots(model(), 5, await client.snapshot());

  const rowsOf = (k: number): number[] => Array.from({ length: 200 }, (_, r) => r).filter((r) => ownerOfRow('user', r, 2) === k);
  const mine = rowsOf(0);
  const foreign = rowsOf(1)[0];
  const push = async (sparse: Record<string, { rows: Int32Array; values: Float32Array }>, dense: Record<string, Float32Array>, paramVersion = 0, rank = 66): Promise<unknown> =>
    requestLarge(hostile, subjects.psPush(job, 0, rank), gradientCodec.encode({ job, rank, step: 0, paramVersion, count: 1, loss: 1, dense, sparse }), { timeoutMs: 10_000 }).catch((e: unknown) => e);
  const rows = (rs: number[], fill = 1): { rows: Int32Array; values: Float32Array } => ({ rows: Int32Array.from(rs), values: new Float32Array(rs.length * 8).fill(fill) });

  const nan = rows(mine.slice(0, 3));
  nan.values[9] = Number.NaN;
  nan.values[17] = Number.POSITIVE_INFINITY;
  const cases: [string, () => Promise<unknown>][] = [
    ['NON_FINITE', () => push({ user: nan }, {})],
    ['DUPLICATE_ROW', () => push({ user: rows([mine[0], mine[1], mine[0]]) }, {})],
    ['BAD_VERSION', () => push({ user: rows([mine[0]]) }, {}, 2 ** 53)],
    ['NOT_OWNER', () => push({ user: rows([mine[0], foreign]) }, {})],
    ['UNKNOWN_DENSE', () => push({ user: rows([mine[0]]) }, { nope: new Float32Array(1) })],
    ['UNKNOWN_TABLE', () => push({ users: rows([mine[0]]) }, {})],
    ['BAD_ROW', () => push({ user: rows([200]) }, {})],
    // A valid push claiming rank 66 on rank 3's subject (per-rank users let only rank 3 publish there).
    [
      'BAD_SENDER',
      () =>
        requestLarge(hostile, subjects.psPush(job, 0, 3), gradientCodec.encode({ job, rank: 66, step: 0, paramVersion: 0, count: 1, loss: 1, dense: {}, sparse: { user: rows([mine[0]]) } }), {
          timeoutMs: 10_000,
        }).catch((e: unknown) => e),
    ],
  ];
  // The dense mean's owner gets a good sparse row with a NaN dense part: nothing may apply.
  const meanOwner = ownerOfDense('mean', 2);
  for (const [reason, run] of cases) {
    const err = await run();
    t.ok(err instanceof RemoteError, `${reason}: refused with a remote error`);
    t.equal((err as RemoteError).code, reason, `${reason}: the code names the reason (${(err as Error).message.slice(0, 140)})`);
  }
  const partial = await requestLarge(
    hostile,
    subjects.psPush(job, meanOwner, 67),
    gradientCodec.encode({ job, rank: 67, step: 0, paramVersion: 0, count: 1, loss: 1, dense: { mean: new Float32Array([Number.NaN]) }, sparse: { user: rows([rowsOf(meanOwner)[0]]) } }),
    { timeoutMs: 10_000 },
  ).catch((e: unknown) => e);
  t.equal((partial as RemoteError).code, 'NON_FINITE', 'a NaN dense part rejects the whole push, its valid rows too');
  // An upload announcing more than the bound: refused at the handshake.
  const huge = await requestLarge(hostile, subjects.psPush(job, 0, 66), new Uint8Array(2 * 1024 * 1024), { timeoutMs: 10_000 }).catch((e: unknown) => e);
  t.equal((huge as RemoteError).code, 'TOO_LARGE', 'an oversize upload is refused before it is held');
  // Bytes that are not a gradient: MALFORMED. A push without a reply subject: counted.
  const junk = await requestLarge(hostile, subjects.psPush(job, 0, 66), new Uint8Array([1, 2, 3]), { timeoutMs: 10_000 }).catch((e: unknown) => e);
  t.equal((junk as RemoteError).code, 'MALFORMED');
  hostile.publish(subjects.psPush(job, 0, 66), gradientCodec.encode({ job, rank: 66, step: 0, paramVersion: 0, count: 1, loss: 1, dense: {}, sparse: { user: rows([mine[5]]) } }));
  await hostile.flush();

  const stats: ShardStats[] = await client.stats();
  const s0 = stats[0];
  t.equal(s0.pushes, 0, 'shard 0 applied nothing');
  t.equal(s0.version, 0);
  for (const [reason] of cases) t.equal(s0.rejectedByReason[reason as keyof ShardStats['rejectedByReason']], 1, `shard 0 counted one ${reason}`);
  t.equal(s0.rejectedByReason.MALFORMED, 1);
  t.equal(s0.bySender['66'].accepted, 0);
  t.equal(
    Object.values(s0.bySender['66'].rejected).reduce((a, b) => a + b, 0),
    cases.length,
    'all charged to the sender rank 66',
  );
  t.equal(s0.noReply, 1, 'the push without a reply subject was counted, not applied');
  t.equal(stats[meanOwner].bySender['67'].rejected.NON_FINITE, 1);
  t.equal(stats[meanOwner].version, 0);

  const after = mergeSnapshots(model(), 5, await client.snapshot());
  t.equal(nonFiniteParam(after), undefined, 'every parameter is finite');
  for (const name of Object.keys(before.tables)) t.same(after.tables[name].data, before.tables[name].data, `table ${name} unchanged bit for bit`);
  t.same(after.dense, before.dense, 'dense unchanged');

  // An honest push (pulled version, own rows) still applies.
  await client.pull({ user: Int32Array.from([mine[0]]) }, []);
  const replies = await client.push(0, { loss: 1, count: 1, sparse: { user: rows([mine[0]], 0.1) }, dense: {} }, 1);
  t.ok(
    replies.every((r) => r.accepted),
    'a valid push is accepted',
  );
  t.equal((await client.stats())[0].bySender['1'].accepted, 1);
});
