import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import type { ImageBatch, InteractionsBatch, RatingsBatch } from '@actorflow/data';
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
  // One global epoch: every row once per epoch, whatever the number of shards.
  t.equal(union.size, 2 * dataset.train.length, `${union.size} of ${2 * dataset.train.length} row-epochs`);
  for (const s of svcs) s.stop();
});

t.test('every example kind: user rows, item rows, images, histories; held-out data by task; strong splits', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', split: 'strong:0.2', seed: 8 });
  t.ok(dataset.foldIn !== undefined && dataset.foldIn.length > 0, 'a strong split keeps the fold-in ratings');
  const svcs = [0, 1].map((shard) => serveDataShard(nc, { job: 'kinds', shard, of: 2, dataset, batchSize: 8, epochs: 1, seed: 8 }));
  await nc.flush();
  const client = new DataClient(nc, { job: 'kinds', shards: 2 });
  const info = await client.waitForInfo(5000);
  t.equal(info.kind, 'ratings');
  t.equal(info.trainUsers, new Set(dataset.train.user).size);

  // User rows: every training user exactly once, with all of their training items (users are not split across shards).
  const users = new Map<number, number>();
  for await (const { batch } of client.shared<InteractionsBatch>({ kind: 'user-rows' })) {
    for (let k = 0; k < batch.user.length; k++) users.set(batch.user[k], (users.get(batch.user[k]) ?? 0) + batch.offsets[k + 1] - batch.offsets[k]);
  }
  t.equal(users.size, info.trainUsers);
  t.equal(
    [...users.values()].reduce((a, b) => a + b, 0),
    dataset.train.length,
    'every training rating in exactly one user row',
  );
  const items = new Set<number>();
  for await (const { batch } of client.distributed<InteractionsBatch>(0, 1, { kind: 'item-rows' })) for (const i of batch.user) items.add(i);
  t.equal(items.size, info.trainItems);

  // Ratings batches with their users' histories (held-out users' histories are their fold-in items).
  const history = await client.trainHistory();
  t.equal(history.items.length, dataset.train.length + (dataset.foldIn?.length ?? 0));
  let checked = 0;
  for await (const { batch } of client.distributed<RatingsBatch>(1, 2, { kind: 'ratings', history: true })) {
    const h = batch.history;
    if (h === undefined) throw new Error('no history');
    t.same(
      [...h.user],
      [...new Set(batch.user)].sort((a, b) => a - b),
      'one history row per distinct user, sorted',
    );
    checked++;
    if (checked > 3) break;
  }
  const ranking = await client.heldOut({ task: 'ranking', input: 'interactions' }, info.numItems);
  t.equal(ranking.testRows?.items.length, dataset.test.length);
  const rowRatings = await client.heldOut({ task: 'rating', input: 'interactions', rowsAre: 'items' }, info.numItems);
  t.equal(rowRatings.itemHistory?.items.length, dataset.train.length);
  t.equal((await client.heldOut({}, info.numItems)).ratings?.length, dataset.test.length);
  await t.rejects(client.testImages(), /this dataset has no images/);
  for (const s of svcs) s.stop();
});

t.test('image datasets: MNIST digits by batch and as a test set', async (t) => {
  const server = await NatsServer.start({ maxPayload: 64 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const dataset = await loadJobDataset({ source: 'mnist:bundled', seed: 1 });
  const n = dataset.images?.train.n ?? 0;
  t.ok(n > 5000, `${n} training digits`);
  const svc = serveDataShard(nc, { job: 'img', shard: 0, of: 1, dataset, batchSize: 512, epochs: 1, seed: 1 });
  await nc.flush();
  const client = new DataClient(nc, { job: 'img', shards: 1 });
  const info = await client.waitForInfo(5000);
  t.equal(info.kind, 'images');
  t.equal(info.numClasses, 10);
  let seen = 0;
  for await (const { batch } of client.shared<ImageBatch>({ kind: 'images' })) {
    t.equal(batch.pixels.length, batch.label.length * 784);
    seen += batch.label.length;
  }
  t.equal(seen, n, 'every training image once');
  const test = (await client.heldOut({ input: 'images', task: 'classification' }, 0)).images;
  t.equal(test?.label.length, dataset.images?.test.n);
  await t.rejects(loadJobDataset({ source: 'mnist:/nonexistent', seed: 1 }), /no such file/);
  svc.stop();
});
