// The pipelined ps step (ps-trainer.ts): the next batch's pull is sent right behind the push.
// When the push is chunked (larger than max_payload: an upload handshake first), the small pull
// overtakes it and the shard serves it from the version before the push; pullAfter must notice
// (version check) and pull again, so one trainer still equals the single process bit for bit.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient, loadJobDataset, serveDataShard } from '@actorflow/feed';
import { BiasedMF } from '@actorflow/models';
import { ParameterShard, PsClient, mergeSnapshots, runPsTrainer, servePsShard, trainLocal } from '../mod.ts';

const optimizer = { name: 'adam', lr: 0.01, l2: 1e-4 } as const;

t.test('a pull that overtakes a chunked push is asked again: one trainer equals the single process', async (t) => {
  const server = await NatsServer.start({ maxPayload: 4096 });
  t.teardown(() => server.stop());
  const engine = await selectBackend({ backend: 'cpu' });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 5 });
  const makeModel = () => new BiasedMF({ numUsers: dataset.numUsers, numItems: dataset.numItems, dim: 16, initStd: 0.1, globalMean: dataset.globalMean });
  const local = trainLocal({ engine, model: makeModel(), train: dataset.train, batchSize: 64, epochs: 1, seed: 5, optimizer });
  const nc = await connect({ servers: [server.url] });
  const job = 'pipe';
  const feed = serveDataShard(nc, { job, shard: 0, of: 1, dataset, batchSize: 64, epochs: 1, seed: 5 });
  const shard = new ParameterShard({ model: makeModel(), shard: 0, of: 1, seed: 5, optimizer });
  const subs = servePsShard(nc, job, shard);
  await nc.flush();
  const client = new PsClient(nc, { job, shards: 1 });
  const r = await runPsTrainer({ engine, model: makeModel(), client, rank: 0, data: new DataClient(nc, { job, shards: 1 }).shared() });
  t.equal(r.steps, local.steps, 'same number of steps');
  t.ok(r.repulls > 0, `pulls that overtook a chunked push were asked again (${r.repulls} of ${r.steps - 1})`);
  t.equal(r.repulls, client.counters.repulls, "the trainer reports the client's re-pulls");
  const merged = mergeSnapshots(makeModel(), 5, await client.snapshot());
  for (const name of ['user', 'item', 'userBias', 'itemBias']) t.same(merged.tables[name].data, local.params.tables[name].data, `table ${name} equals the single-process result bit for bit`);
  feed.stop();
  for (const s of subs) s.unsubscribe();
  await nc.close();
});

t.test('pullAfter asks a shard again when its version is below the one required', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const model = new BiasedMF({ numUsers: 20, numItems: 30, dim: 2, initStd: 0.1, globalMean: 3 });
  const nc = await connect({ servers: [server.url] });
  const shard = new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer });
  const subs = servePsShard(nc, 'pa', shard);
  await nc.flush();
  const client = new PsClient(nc, { job: 'pa', shards: 1 });
  const rows = { user: Int32Array.from([1, 3]) };
  await client.pullAfter(rows, ['mean'], () => [0]);
  t.equal(client.counters.repulls, 0, 'version 0 ≥ 0: answered at once');
  // A push applied only once the first answer was read: the required version arrives late.
  let applied = false;
  const got = await client.pullAfter(rows, ['mean'], () => {
    if (!applied) shard.push({ sparse: { user: { rows: Int32Array.from([1]), values: new Float32Array([1, 1]) } }, dense: {} }, 0);
    applied = true;
    return [1];
  });
  t.equal(client.counters.repulls, 1, 'version 0 < 1: pulled again');
  t.same(Array.from(got.tables.user.values.subarray(0, 2)), Array.from(shard.pull({ user: Int32Array.from([1]) }, []).tables.user.values), 'the rows are those after the push');
  for (const s of subs) s.unsubscribe();
  await nc.close();
});
