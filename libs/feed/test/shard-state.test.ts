import t from 'tap';
import { NatsServer, connect, requestLarge, type NatsConnection } from '@actorflow/bus';
import { batchReplyCodec, batchRequestCodec, subjects, type BatchKind, type BatchReply } from '@actorflow/protocol';
import { DATA_SHARD_STATE_FORMAT, DataShardStateError, REQUEST_ID_MEMORY, loadJobDataset, serveDataShard, type DataShardOptions, type DataShardState } from '../mod.ts';

const BATCH = 90;
const EPOCHS = 2;

async function next(nc: NatsConnection, job: string, kind: BatchKind, requestId?: string): Promise<{ bytes: Uint8Array; reply: BatchReply }> {
  const bytes = await requestLarge(nc, subjects.dataNext(job, 0), batchRequestCodec.encode({ job, rank: 0, worldSize: 1, epoch: 0, kind, ...(requestId !== undefined ? { requestId } : {}) }), {
    timeoutMs: 5000,
  });
  return { bytes, reply: batchReplyCodec.decode(bytes) };
}

async function fetchState(nc: NatsConnection, job: string): Promise<DataShardState> {
  return JSON.parse(new TextDecoder().decode(await requestLarge(nc, subjects.dataState(job, 0), new Uint8Array(0), { timeoutMs: 5000 }))) as DataShardState;
}

t.test('a restarted shard continues its shared-mode cursors exactly where the state says', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 3 });
  const opts = (job: string, restore?: DataShardState): DataShardOptions => ({
    job,
    shard: 0,
    of: 2,
    dataset,
    batchSize: BATCH,
    epochs: EPOCHS,
    seed: 3,
    ...(restore !== undefined ? { restore } : {}),
  });
  // The uninterrupted answers to a fixed pattern of requests (two ratings, one user-rows, …) until both kinds have ended.
  const kindOf = (i: number): BatchKind => (i % 3 === 2 ? 'user-rows' : 'ratings');
  const straight = serveDataShard(nc, opts('straight'));
  await nc.flush();
  const expected: { kind: BatchKind; bytes: Uint8Array; reply: BatchReply }[] = [];
  const ended = new Set<BatchKind>();
  for (let i = 0; ended.size < 2; i++) {
    const r = await next(nc, 'straight', kindOf(i));
    if (r.reply.endOfData) ended.add(kindOf(i));
    expected.push({ kind: kindOf(i), ...r });
  }
  straight.stop();
  const perEpoch = expected.filter((e) => e.kind === 'ratings' && e.reply.epoch === 0 && !e.reply.endOfData).length;
  t.ok(perEpoch > 3, `${perEpoch} ratings batches per epoch`);
  // Shard 0 of 2 serves every other global batch of the job's global epochs (G per epoch).
  const G = Math.ceil(dataset.train.length / BATCH);
  t.equal(perEpoch, Math.ceil(G / 2));
  t.equal(expected.filter((e) => e.kind === 'ratings' && !e.reply.endOfData).length, Math.ceil((EPOCHS * G) / 2));
  t.ok(
    expected.some((e) => e.kind === 'user-rows' && e.reply.epoch === 1 && !e.reply.endOfData),
    'user-rows reach epoch 2 too',
  );
  const servedBy = (k: number): number => expected.slice(0, k).filter((e) => !e.reply.endOfData).length;

  // Stop after k requests: mid-epoch, at an epoch's end, in the last epoch, after the end; restart from the state each time.
  const firstEnd = expected.findIndex((e) => e.reply.endOfData);
  for (const k of [0, 5, expected.findIndex((e) => e.kind === 'ratings' && e.reply.epoch === 1), firstEnd, firstEnd + 1, expected.length - 1, expected.length]) {
    const job = `cut${k}`;
    const first = serveDataShard(nc, opts(job));
    await nc.flush();
    for (let i = 0; i < k; i++) t.same((await next(nc, job, expected[i].kind)).bytes, expected[i].bytes);
    const state = first.exportState();
    t.same(await fetchState(nc, job), state, `k=${k}: the state served on <job>.data.<shard>.state is exportState()`);
    t.equal(state.format, DATA_SHARD_STATE_FORMAT);
    t.equal(state.served, servedBy(k));
    first.stop();
    const restarted = serveDataShard(nc, opts(job, JSON.parse(JSON.stringify(state)) as DataShardState));
    await nc.flush();
    t.same(restarted.exportState(), state, `k=${k}: restored state reads back the same`);
    let same = true;
    for (let i = k; i < expected.length; i++) {
      const r = await next(nc, job, expected[i].kind);
      if (!Buffer.from(r.bytes).equals(Buffer.from(expected[i].bytes))) {
        same = false;
        t.fail(`k=${k}: request ${i} (${expected[i].kind}) got epoch ${r.reply.epoch} batch ${r.reply.index}, expected epoch ${expected[i].reply.epoch} batch ${expected[i].reply.index}`);
        break;
      }
    }
    t.ok(same, `k=${k}: the rest of the sequence is identical, byte for byte`);
    t.ok((await next(nc, job, 'ratings')).reply.endOfData, `k=${k}: then the end of the data`);
    t.ok((await next(nc, job, 'user-rows')).reply.endOfData);
    t.equal(restarted.exportState().served, servedBy(expected.length));
    restarted.stop();
  }
});

t.test('a shared-mode request id answered before gets the same bytes and takes no batch', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 4 });
  const svc = serveDataShard(nc, { job: 'idem', shard: 0, of: 1, dataset, batchSize: 20, epochs: 3, seed: 4 });
  await nc.flush();
  const a = await next(nc, 'idem', 'ratings', 'c1:0');
  const again = await next(nc, 'idem', 'ratings', 'c1:0');
  t.same(again.bytes, a.bytes, 'the retry gets the first answer');
  t.equal(svc.exportState().kinds.ratings?.index, 1, 'the cursor moved once');
  t.equal(svc.stats().served, 1);
  const b = await next(nc, 'idem', 'ratings', 'c1:1');
  t.equal(b.reply.index, a.reply.index + 1, 'a new id takes the next batch');
  const c = await next(nc, 'idem', 'ratings');
  t.equal(c.reply.index, b.reply.index + 1, 'requests without an id are served as before');
  let last = c;
  for (let i = 2; i < REQUEST_ID_MEMORY + 2; i++) last = await next(nc, 'idem', 'ratings', `c1:${i}`);
  const before = svc.exportState();
  t.same((await next(nc, 'idem', 'ratings', `c1:${REQUEST_ID_MEMORY + 1}`)).bytes, last.bytes, 'a recent id is still remembered');
  t.same(svc.exportState(), before, 'and takes no batch');
  const old = await next(nc, 'idem', 'ratings', 'c1:0');
  t.notOk(Buffer.from(old.bytes).equals(Buffer.from(a.bytes)), 'an id older than the memory is a new request');
  t.equal(svc.exportState().served, before.served + 1);
  svc.stop();
});

t.test('a state that does not fit this shard is refused before it serves', async (t) => {
  const server = await NatsServer.start();
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 5 });
  const opts: DataShardOptions = { job: 'bad', shard: 1, of: 2, dataset, batchSize: 50, epochs: 2, seed: 5 };
  const good: DataShardState = { format: DATA_SHARD_STATE_FORMAT, shard: 1, of: 2, batchSize: 50, seed: 5, epochs: 2, served: 3, kinds: { ratings: { epoch: 1, index: 2, done: false } } };
  const svc = serveDataShard(nc, { ...opts, restore: good });
  t.same(svc.exportState(), good, 'a fitting state is taken as is');
  svc.stop();
  const cases: [string, unknown, RegExp][] = [
    ['not an object', 'x', /not an object/],
    ['another format', { ...good, format: 9 }, /format 9 is not supported/],
    ['another shard', { ...good, shard: 0 }, /shard is 0, this shard's is 1/],
    ['another shard count', { ...good, of: 3 }, /of is 3, this shard's is 2/],
    ['another batch size', { ...good, batchSize: 64 }, /batchSize is 64, this shard's is 50/],
    ['another seed', { ...good, seed: 6 }, /seed is 6, this shard's is 5/],
    ['other epochs', { ...good, epochs: 5 }, /epochs is 5, this shard's is 2/],
    ['bad served', { ...good, served: -1 }, /served must be a non-negative integer/],
    ['kinds not an object', { ...good, kinds: null }, /kinds is not an object/],
    ['unknown kind', { ...good, kinds: { films: { epoch: 0, index: 0, done: false } } }, /unknown example kind 'films'/],
    [
      'images of a ratings dataset',
      { ...good, kinds: { images: { epoch: 0, index: 0, done: false } } },
      /has a cursor for 'images', but this dataset has no such examples \(data shard 1 has no images/,
    ],
    ['epoch out of range', { ...good, kinds: { ratings: { epoch: 3, index: 0, done: true } } }, /epoch 3 is past the job's 2 epoch\(s\)/],
    ['last epoch not done', { ...good, kinds: { ratings: { epoch: 2, index: 0, done: false } } }, /epoch 2 is past/],
    ['index past the epoch', { ...good, kinds: { ratings: { epoch: 0, index: 10_000, done: false } } }, /batch 10000 of epoch 0, but an epoch here has \d+ batches/],
    ['cursor not an object', { ...good, kinds: { ratings: 5 } }, /kinds\.ratings is not an object/],
    ['done not a boolean', { ...good, kinds: { ratings: { epoch: 0, index: 0, done: 'no' } } }, /done must be a boolean/],
  ];
  for (const [what, restore, message] of cases) {
    let err: unknown;
    try {
      serveDataShard(nc, { ...opts, restore: restore as DataShardState }).stop();
    } catch (e) {
      err = e;
    }
    t.type(err, DataShardStateError, what);
    t.match((err as Error | undefined)?.message, message, what);
  }
  // A done cursor restores as done: the first answer is the end of the data.
  const done = serveDataShard(nc, { ...opts, restore: { ...good, kinds: { ratings: { epoch: 2, index: 0, done: true } } } });
  await nc.flush();
  const r = await requestLarge(nc, subjects.dataNext('bad', 1), batchRequestCodec.encode({ job: 'bad', rank: 0, worldSize: 1, epoch: 0 }), { timeoutMs: 5000 });
  t.ok(batchReplyCodec.decode(r).endOfData);
  done.stop();
});
