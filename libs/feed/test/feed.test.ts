import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { DataClient, loadJobDataset, serveDataShard } from '../mod.ts';

t.test('two shards, two trainers: every training row exactly once per epoch', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 5 });
  t.ok(dataset.noiseFloorRmse !== undefined);
  const shards = [0, 1].map((shard) => serveDataShard(nc, { job: 'fj', shard, of: 2, dataset, batchSize: 100, epochs: 2, seed: 5 }));
  await nc.flush();
  const client = new DataClient(nc, { job: 'fj', shards: 2 });
  const info = await client.waitForInfo(5000);
  t.equal(info.trainRows, dataset.train.length);
  t.equal(info.shards, 2);
  t.equal(info.numUsers, 100);
  const seen = new Map<string, number>();
  const read = async (): Promise<void> => {
    for await (const { epoch, batch } of client.shared()) {
      for (let i = 0; i < batch.user.length; i++) {
        const key = `${epoch}:${batch.user[i]}:${batch.item[i]}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all([read(), read()]);
  t.equal(seen.size, 2 * dataset.train.length, 'each row once in each of the 2 epochs');
  t.ok([...seen.values()].every((c) => c === 1));
  t.ok(shards.every((s) => s.stats().done));
  const test = await client.testSet();
  t.equal(test.length, dataset.test.length);
  t.same(test.rating, dataset.test.rating);
  for (const s of shards) s.stop();
});

t.test('bad dataset specs are clear errors', async (t) => {
  await t.rejects(loadJobDataset({ source: 'synthetic:huge', seed: 1 }), /unknown dataset 'synthetic:huge'/);
  await t.rejects(loadJobDataset({ source: '/nonexistent.csv', seed: 1 }), /no such file/);
  await t.rejects(loadJobDataset({ source: 'synthetic:tiny', split: 'bogus', seed: 1 }), /unknown split/);
});

t.test('distributed mode: ranks get disjoint slices whose union is the single-process batch', async (t) => {
  const server = await NatsServer.start();
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 6 });
  const svcs = [0, 1].map((shard) => serveDataShard(nc, { job: 'dj', shard, of: 2, dataset, batchSize: 7, epochs: 2, seed: 6 }));
  await nc.flush();
  const client = new DataClient(nc, { job: 'dj', shards: 2 });
  const read = async (rank: number): Promise<string[]> => {
    const keys: string[] = [];
    for await (const { epoch, batch } of client.distributed(rank, 2)) for (let i = 0; i < batch.user.length; i++) keys.push(`${epoch}:${batch.user[i]}:${batch.item[i]}`);
    return keys;
  };
  const [a, b] = await Promise.all([read(0), read(1)]);
  const union = new Set([...a, ...b]);
  t.equal(union.size, a.length + b.length, 'disjoint');
  // An epoch ends when the first shard runs out, so at most one global batch per shard is left out.
  t.ok(union.size <= 2 * dataset.train.length && union.size >= 2 * (dataset.train.length - 2 * 14), `${union.size} of ${2 * dataset.train.length} row-epochs`);
  for (const s of svcs) s.stop();
});
