import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { ProcessGroup } from '@actorflow/collectives';
import { selectBackend } from '@actorflow/engine';
import { EpochIterator, lowRankRatings, takeBatch, type RatingsBatch } from '@actorflow/data';
import { BiasedMF } from '@actorflow/models';
import { runMirroredTrainer, trainLocal } from '../mod.ts';

const data = lowRankRatings({ users: 120, items: 90, perUser: 25, seed: 8 });
const train = data.ratings;
const makeModel = () => new BiasedMF({ numUsers: 120, numItems: 90, dim: 4, initStd: 0.1, globalMean: 3.5 });
const B = 64;

function* rankBatches(rank: number, worldSize: number, epochs: number, batchSize: number): Generator<{ epoch: number; batch: RatingsBatch }> {
  const it = new EpochIterator({ rows: train.length, batchSize, seed: 9, rank, worldSize });
  for (let e = 0; e < epochs; e++) for (const idx of it.batches(e)) yield { epoch: e, batch: takeBatch(train, idx) };
}

for (const [optimizer, allreduce] of [
  [{ name: 'sgd', lr: 0.5 }, 'star'],
  [{ name: 'adam', lr: 0.01, l2: 1e-4 }, 'star'],
  [{ name: 'adam', lr: 0.01, l2: 1e-4 }, 'ring'],
] as const) {
  t.test(`mirrored 2 ranks × B equals one process with 2B (${optimizer.name}, ${allreduce})`, async (t) => {
    const server = await NatsServer.start({ maxPayload: 64 * 1024 });
    t.teardown(() => server.stop());
    const engine = await selectBackend({ backend: 'cpu' });
    const local = trainLocal({ engine, model: makeModel(), train, batchSize: 2 * B, epochs: 1, seed: 9, optimizer });
    const ncs = await Promise.all([0, 1].map(() => connect({ servers: [server.url] })));
    const groups = await Promise.all([0, 1].map((rank) => ProcessGroup.init({ nc: ncs[rank], job: 'mirror', worldSize: 2, rank, timeoutMs: 10_000 })));
    const results = await Promise.all(
      [0, 1].map((rank) =>
        runMirroredTrainer({
          pg: groups[rank],
          engine,
          model: makeModel(),
          data: rankBatches(rank, 2, 1, B),
          optimizer,
          allreduce,
          seed: rank === 0 ? 9 : 1234 /* rank 1's own init is overwritten by the broadcast */,
        }),
      ),
    );
    t.equal(results[0].steps, local.steps, 'same number of steps');
    t.same(results[0].params.tables.user.data, results[1].params.tables.user.data, 'replicas identical bit for bit');
    let maxDiff = 0;
    for (const name of ['user', 'item', 'userBias', 'itemBias']) {
      const a = results[0].params.tables[name].data;
      const b = local.params.tables[name].data;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    }
    maxDiff = Math.max(maxDiff, Math.abs(results[0].params.dense.mean[0] - local.params.dense.mean[0]));
    t.ok(maxDiff < 1e-5, `max |mirrored − single process| = ${maxDiff.toExponential(2)} after ${local.steps} steps`);
    for (const g of groups) g.destroy();
    for (const nc of ncs) await nc.close();
  });
}

t.test('uneven data never hangs; a silent rank is named', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const engine = await selectBackend({ backend: 'cpu' });
  const ncs = await Promise.all([0, 1, 2].map(() => connect({ servers: [server.url] })));
  const groups = await Promise.all([0, 1, 2].map((rank) => ProcessGroup.init({ nc: ncs[rank], job: 'uneven', worldSize: 3, rank, timeoutMs: 5000 })));
  const few = (rank: number): { epoch: number; batch: RatingsBatch }[] => [...rankBatches(rank, 3, 1, 32)].slice(0, rank === 2 ? 1 : 100);
  const results = await Promise.all([0, 1, 2].map((rank) => runMirroredTrainer({ pg: groups[rank], engine, model: makeModel(), data: few(rank), optimizer: { name: 'sgd', lr: 0.1 }, seed: 9 })));
  t.ok(
    results.every((r) => r.steps === results[0].steps && r.steps > 1),
    `all ranks ran ${results[0].steps} steps although rank 2 had 1 batch`,
  );
  // Rank 2 goes silent: the next collective fails on the others, naming it.
  await t.rejects(Promise.all([groups[0].allGather(new Uint8Array(1)), groups[1].allGather(new Uint8Array(1))]), /rank\(s\) 2 sent nothing/);
  for (const g of groups) g.destroy();
  for (const nc of ncs) await nc.close();
});
