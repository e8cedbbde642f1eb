// One global epoch across data shards: whatever K, one reader gets exactly the single-process
// batch sequence (every example once per epoch, G·epochs batches), in shared and distributed mode.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { EpochIterator, exampleCount, exampleSet, takeExamples, type InteractionsBatch, type RatingsBatch } from '@actorflow/data';
import { DataClient, loadJobDataset, serveDataShard } from '../mod.ts';

const SEED = 13;
const EPOCHS = 2;

const key = (b: RatingsBatch | InteractionsBatch): string =>
  JSON.stringify('rating' in b ? [Array.from(b.user), Array.from(b.item), Array.from(b.rating)] : [Array.from(b.user), Array.from(b.offsets), Array.from(b.items), Array.from(b.values)]);

t.test('shared mode: K = 1, 2, 3 data shards give one reader the single-process batches, in order', async (t) => {
  const server = await NatsServer.start({ maxPayload: 256 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: SEED });
  for (const kind of ['ratings', 'user-rows'] as const) {
    const set = exampleSet(kind, { ratings: dataset.train });
    // A batch size whose batch count per epoch is neither a multiple of 2 nor of 3.
    let batchSize = kind === 'ratings' ? 97 : 7;
    while ([2, 3].some((k) => Math.ceil(exampleCount(set) / batchSize) % k === 0)) batchSize++;
    const G = Math.ceil(exampleCount(set) / batchSize);
    const it = new EpochIterator({ rows: exampleCount(set), batchSize, seed: SEED });
    const single: string[] = [];
    const singleEpochs: number[] = [];
    for (let e = 0; e < EPOCHS; e++) {
      for (const idx of it.batches(e)) {
        single.push(key(takeExamples(set, idx) as RatingsBatch | InteractionsBatch));
        singleEpochs.push(e);
      }
    }
    t.equal(single.length, G * EPOCHS);
    for (const K of [1, 2, 3]) {
      const job = `ge-${kind}-${K}`;
      const svcs = Array.from({ length: K }, (_, shard) => serveDataShard(nc, { job, shard, of: K, dataset, batchSize, epochs: EPOCHS, seed: SEED }));
      await nc.flush();
      const got: string[] = [];
      const epochs: number[] = [];
      for await (const { epoch, batch } of new DataClient(nc, { job, shards: K }).shared<RatingsBatch | InteractionsBatch>({ kind })) {
        got.push(key(batch));
        epochs.push(epoch);
      }
      t.equal(got.length, G * EPOCHS, `${kind}, K=${K}: exactly ${G} batches per epoch`);
      t.same(epochs, singleEpochs, `${kind}, K=${K}: every batch carries its global epoch`);
      t.ok(
        got.every((g, i) => g === single[i]),
        `${kind}, K=${K}: the single-process batch sequence, batch for batch`,
      );
      t.ok(
        svcs.every((s) => s.stats().done),
        'every shard is done',
      );
      t.equal(
        svcs.reduce((n, s) => n + s.stats().served, 0),
        G * EPOCHS,
        'the shards served G·epochs batches between them',
      );
      for (const s of svcs) s.stop();
    }
  }
});

t.test('distributed mode: K = 1, 2, 3 data shards give every rank its DistributedSampler slices of one global epoch', async (t) => {
  const server = await NatsServer.start({ maxPayload: 256 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: SEED });
  const W = 2;
  const batchSize = 41;
  const expected = (rank: number): string[] => {
    const it = new EpochIterator({ rows: dataset.train.length, batchSize, seed: SEED, rank, worldSize: W });
    const out: string[] = [];
    for (let e = 0; e < EPOCHS; e++) for (const idx of it.batches(e)) out.push(`${e}:${key(takeExamples({ kind: 'ratings', ratings: dataset.train }, idx) as RatingsBatch)}`);
    return out;
  };
  for (const K of [1, 2, 3]) {
    const job = `gd-${K}`;
    const svcs = Array.from({ length: K }, (_, shard) => serveDataShard(nc, { job, shard, of: K, dataset, batchSize, epochs: EPOCHS, seed: SEED }));
    await nc.flush();
    const client = new DataClient(nc, { job, shards: K });
    for (let rank = 0; rank < W; rank++) {
      const got: string[] = [];
      for await (const { epoch, batch } of client.distributed(rank, W)) if (batch.user.length > 0) got.push(`${epoch}:${key(batch)}`);
      t.same(got, expected(rank), `K=${K}, rank ${rank}: the single-process slices`);
    }
    for (const s of svcs) s.stop();
  }
});
