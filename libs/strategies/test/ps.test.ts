import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient, loadJobDataset, serveDataShard } from '@actorflow/feed';
import { BiasedMF } from '@actorflow/models';
import { ParameterShard, PsClient, mergeSnapshots, ownerOfRow, parseStaleness, runPsTrainer, servePsShard, trainLocal } from '../mod.ts';

const optimizer = { name: 'adam', lr: 0.01, l2: 1e-4 } as const;

t.test('ps with one trainer equals single-process training, for 1 and 2 parameter shards', async (t) => {
  const server = await NatsServer.start({ maxPayload: 256 * 1024 });
  t.teardown(() => server.stop());
  const engine = await selectBackend({ backend: 'cpu' });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 21 });
  const makeModel = () => new BiasedMF({ numUsers: dataset.numUsers, numItems: dataset.numItems, dim: 4, initStd: 0.1, globalMean: dataset.globalMean });
  const local = trainLocal({ engine, model: makeModel(), train: dataset.train, batchSize: 64, epochs: 2, seed: 21, optimizer });

  for (const K of [1, 2]) {
    const nc = await connect({ servers: [server.url] });
    const job = `ps${K}`;
    const feed = serveDataShard(nc, { job, shard: 0, of: 1, dataset, batchSize: 64, epochs: 2, seed: 21 });
    const shards = Array.from({ length: K }, (_, k) => new ParameterShard({ model: makeModel(), shard: k, of: K, seed: 21, optimizer }));
    const subs = shards.flatMap((s) => servePsShard(nc, job, s));
    await nc.flush();
    const client = new PsClient(nc, { job, shards: K });
    const losses: number[] = [];
    const r = await runPsTrainer({ engine, model: makeModel(), client, rank: 0, data: new DataClient(nc, { job, shards: 1 }).shared(), onStep: (s) => losses.push(s.loss) });
    t.equal(r.steps, local.steps, `K=${K}: same number of steps`);
    const merged = mergeSnapshots(makeModel(), 21, await client.snapshot());
    for (const name of ['user', 'item', 'userBias', 'itemBias']) {
      t.same(merged.tables[name].data, local.params.tables[name].data, `K=${K}: table ${name} equals the single-process result bit for bit`);
    }
    t.same(merged.dense.mean, local.params.dense.mean);
    t.equal(
      shards.reduce((s, p) => s + p.stats.pushes, 0),
      r.steps * K,
      'every shard got every push',
    );
    feed.stop();
    for (const s of subs) s.unsubscribe();
    await nc.close();
  }
});

t.test('shards own disjoint rows and refuse others; staleness policies', async (t) => {
  const model = new BiasedMF({ numUsers: 50, numItems: 40, dim: 2, initStd: 0.1, globalMean: 3 });
  const a = new ParameterShard({ model, shard: 0, of: 2, seed: 1, optimizer });
  const owned = Array.from({ length: 50 }, (_, r) => r).filter((r) => ownerOfRow('user', r, 2) === 0);
  const foreign = Array.from({ length: 50 }, (_, r) => r).find((r) => ownerOfRow('user', r, 2) === 1) as number;
  t.ok(owned.length > 10 && owned.length < 40, `shard 0 owns ${owned.length} of 50 users`);
  t.throws(() => a.pull({ user: new Int32Array([foreign]) }, []), /belongs to shard 1/);
  t.throws(() => a.pull({ user: new Int32Array([99]) }, []), /out of range/);
  t.throws(() => a.pull({ nope: new Int32Array([0]) }, []), /no table 'nope'/);
  const g = { sparse: { user: { rows: Int32Array.from([owned[0]]), values: new Float32Array([1, 1]) } }, dense: {} };
  const drop = new ParameterShard({ model, shard: 0, of: 2, seed: 1, optimizer, staleness: parseStaleness('drop:1') });
  t.ok(drop.push(g, 0).accepted);
  t.ok(drop.push(g, 0).accepted, 'staleness 1 is allowed');
  const stale = drop.push(g, 0);
  t.notOk(stale.accepted, 'staleness 2 is dropped');
  t.equal(stale.staleness, 2);
  t.equal(drop.stats.dropped, 1);
  const scale = new ParameterShard({ model, shard: 0, of: 2, seed: 1, optimizer: { name: 'sgd', lr: 1 }, staleness: parseStaleness('scale') });
  const before = scale.pull({ user: Int32Array.from([owned[0]]) }, []).tables.user.values.slice();
  scale.push(g, 0);
  scale.push(g, 0); // staleness 1 → lr / 2
  const after = scale.pull({ user: Int32Array.from([owned[0]]) }, []).tables.user.values;
  t.ok(Math.abs(before[0] - after[0] - 1.5) < 1e-5, 'second push scaled by 1/(1+staleness)');
  t.throws(() => parseStaleness('bound'), /unknown staleness policy/);
});

t.test('SSP (bound:1): a trainer too far ahead waits until the slowest catches up', async (t) => {
  const model = new BiasedMF({ numUsers: 10, numItems: 10, dim: 2, initStd: 0.1, globalMean: 3 });
  const ps = new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer, staleness: parseStaleness('bound:1') });
  const g = { sparse: { user: { rows: Int32Array.from([1]), values: new Float32Array([0.1, 0.1]) } }, dense: {} };
  ps.push(g, 0, 1); // rank 1: clock 1
  ps.push(g, 1, 0);
  ps.push(g, 2, 0); // rank 0: clock 2 — one ahead: still allowed
  t.equal((await ps.waitForTurn(0)).waitedMs < 50, true, 'within the bound: no wait');
  ps.push(g, 3, 0); // rank 0: clock 3 — two ahead of rank 1
  let released = false;
  const turn = ps.waitForTurn(0).then(() => (released = true));
  await new Promise((r) => setTimeout(r, 60));
  t.notOk(released, 'rank 0 waits');
  ps.push(g, 4, 1); // rank 1 catches up to clock 2
  await turn;
  t.ok(released, 'released once the slowest trainer is within the bound');
  const capped = new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer, staleness: parseStaleness('bound:0') });
  capped.push(g, 0, 1);
  capped.push(g, 0, 0);
  capped.push(g, 0, 0);
  t.ok((await capped.waitForTurn(0, 50)).waitedMs >= 50, 'never waits past maxWaitMs');
  t.same(parseStaleness('bound:3'), { kind: 'bound', max: 3 });
  t.same(await new ParameterShard({ model, shard: 0, of: 1, seed: 1, optimizer }).waitForTurn(0), { waitedMs: 0 });
});
