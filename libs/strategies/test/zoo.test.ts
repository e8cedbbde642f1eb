// Every model of the zoo under both strategies, over a real nats-server and real data shards:
//   mirrored, 2 ranks × B  ==  one process with batch 2B   (the same data order, to ~1e-5)
//   ps, one trainer, 2 parameter shards  ==  one process with batch B
// and the trained parameters score on held-out data through the same evaluation as the actors.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { ProcessGroup } from '@actorflow/collectives';
import { selectBackend } from '@actorflow/engine';
import { DataClient, serveDataShard } from '@actorflow/feed';
import { exampleKindOf } from '@actorflow/models';
import { ParameterShard, PsClient, evaluateModel, mergeSnapshots, runMirroredTrainer, runPsTrainer, servePsShard, trainLocal } from '../mod.ts';
import { B, SEED, cases, maxDiff, zooCase, zooData } from './fixtures/zoo.ts';

t.test('the zoo under mirrored and ps equals single-process training', async (t) => {
  const server = await NatsServer.start({ maxPayload: 256 * 1024 });
  t.teardown(() => server.stop());
  const engine = await selectBackend({ backend: process.env.ZOO_BACKEND ?? 'cpu' });
  const z = await zooData();
  for (const [n, c] of cases.entries()) {
    const { make, train, held, ds } = zooCase(c, z);
    const history = z.history;
    const model = make();
    const feedKind = { kind: exampleKindOf(model), ...(model.needsHistory === true ? { history: true } : {}) };
    const label = c.label ?? c.name;
    // Mirrored: 2 ranks × B against one process with 2B.
    const local2B = trainLocal({ engine, model: make(), train, history, batchSize: 2 * B, epochs: 1, seed: SEED, optimizer: c.optimizer });
    const job = `zoo${n}`;
    const nc = await connect({ servers: [server.url] });
    const shard = serveDataShard(nc, { job, shard: 0, of: 1, dataset: ds, batchSize: B, epochs: 1, seed: SEED });
    const ncs = await Promise.all([0, 1].map(() => connect({ servers: [server.url] })));
    const groups = await Promise.all([0, 1].map((rank) => ProcessGroup.init({ nc: ncs[rank], job, worldSize: 2, rank, timeoutMs: 30_000 })));
    const mirrored = await Promise.all(
      [0, 1].map((rank) =>
        runMirroredTrainer({ pg: groups[rank], engine, model: make(), data: new DataClient(ncs[rank], { job, shards: 1 }).distributed(rank, 2, feedKind), optimizer: c.optimizer, seed: SEED }),
      ),
    );
    t.equal(mirrored[0].steps, local2B.steps, `${label}: mirrored ran ${local2B.steps} steps like the single process`);
    const dm = maxDiff(mirrored[0].params, local2B.params);
    t.ok(dm < 1e-5, `${label}: mirrored 2×${B} vs one process ${2 * B}: max |Δparam| = ${dm.toExponential(2)}`);
    t.equal(maxDiff(mirrored[0].params, mirrored[1].params), 0, `${label}: replicas identical`);
    for (const g of groups) g.destroy();
    for (const c2 of ncs) await c2.close();
    shard.stop();

    // ps: one trainer, two parameter shards, against one process with B.
    const localB = trainLocal({ engine, model: make(), train, history, batchSize: B, epochs: 1, seed: SEED, optimizer: c.optimizer });
    const psJob = `zoops${n}`;
    const psFeed = serveDataShard(nc, { job: psJob, shard: 0, of: 1, dataset: ds, batchSize: B, epochs: 1, seed: SEED });
    const psShards = [0, 1].map((k) => new ParameterShard({ model: make(), shard: k, of: 2, seed: SEED, optimizer: c.optimizer }));
    const subs = psShards.flatMap((s) => servePsShard(nc, psJob, s));
    await nc.flush();
    const client = new PsClient(nc, { job: psJob, shards: 2 });
    const r = await runPsTrainer({ engine, model: make(), client, rank: 0, seed: SEED, data: new DataClient(nc, { job: psJob, shards: 1 }).shared(feedKind) });
    t.equal(r.steps, localB.steps, `${label}: ps ran ${localB.steps} steps`);
    const merged = mergeSnapshots(make(), SEED, await client.snapshot());
    const dp = maxDiff(merged, localB.params);
    t.ok(dp < 1e-6, `${label}: ps with one trainer vs one process: max |Δparam| = ${dp.toExponential(2)}`);
    psFeed.stop();
    for (const s of subs) s.unsubscribe();
    await nc.close();

    const metrics = evaluateModel(engine, model, merged, held);
    t.ok(Object.values(metrics).length > 0 && Object.values(metrics).every((x) => Number.isFinite(x)), `${label}: held-out ${JSON.stringify(Object.fromEntries(Object.entries(metrics).slice(0, 4)))}`);
  }
});
