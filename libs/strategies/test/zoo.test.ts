// Every model of the zoo under both strategies, over a real nats-server and real data shards:
//   mirrored, 2 ranks × B  ==  one process with batch 2B   (the same data order, to ~1e-5)
//   ps, one trainer, 2 parameter shards  ==  one process with batch B
// and the trained parameters score on held-out data through the same evaluation as the actors.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { ProcessGroup } from '@actorflow/collectives';
import { selectBackend } from '@actorflow/engine';
import { exampleSet, groupRows, loadBundledDigits, takeImages, type ExampleKind, type ImageSet } from '@actorflow/data';
import type { OptimizerConfig } from '@actorflow/embeddings';
import { DataClient, loadJobDataset, serveDataShard, type JobDataset } from '@actorflow/feed';
import { DATA_HYPER, createModel, exampleKindOf, modelEntry, type Hyper } from '@actorflow/models';
import { ParameterShard, PsClient, evaluateModel, mergeSnapshots, runMirroredTrainer, runPsTrainer, servePsShard, trainLocal, type EvalData, type ParamStore } from '../mod.ts';

interface Case {
  readonly name: string;
  readonly hyper: Hyper;
  readonly optimizer: OptimizerConfig;
  readonly images?: boolean;
  readonly label?: string;
}

const adam = (lr: number): OptimizerConfig => ({ name: 'adam', lr });
const cases: Case[] = [
  { name: 'mf', hyper: { dim: 4 }, optimizer: adam(0.01) },
  { name: 'mf', label: 'mf (dense Adam, PyTorch weight decay)', hyper: { dim: 4 }, optimizer: { name: 'adam', lr: 0.01, l2: 1e-3, dense: true } },
  { name: 'svdpp', hyper: { dim: 4 }, optimizer: adam(0.01) },
  { name: 'ncf', hyper: { dim: 4, layers: '8' }, optimizer: adam(0.01) },
  { name: 'neumf', hyper: { dim: 4, layers: '8,4', negatives: 2 }, optimizer: adam(0.01) },
  { name: 'autorec', hyper: { hidden: 8 }, optimizer: adam(0.01) },
  { name: 'autorec', label: 'autorec (user-based, denoising)', hyper: { hidden: 8, by: 'user', denoise: 0.2 }, optimizer: adam(0.01) },
  { name: 'multvae', hyper: { hidden: '16', latent: 4 }, optimizer: adam(0.01) },
  { name: 'multdae', hyper: { hidden: '16', latent: 4 }, optimizer: adam(0.01) },
  { name: 'mnist-cnn', hyper: { filters: 4, dense: 8 }, optimizer: adam(0.01), images: true },
  { name: 'mnist-ae', hyper: { code: 8 }, optimizer: { name: 'rmsprop', lr: 0.01 }, images: true },
];

const B = 16;
const SEED = 5;

function firstImages(set: ImageSet, n: number): ImageSet {
  const b = takeImages(set, Int32Array.from({ length: n }, (_, i) => i));
  return { pixels: b.pixels, labels: b.label, n };
}

function maxDiff(a: ParamStore, b: ParamStore): number {
  let m = 0;
  for (const [name, t] of Object.entries(a.tables)) {
    const u = b.tables[name].data;
    for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(t.data[i] - u[i]));
  }
  for (const [name, v] of Object.entries(a.dense)) for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] - b.dense[name][i]));
  return m;
}

t.test('the zoo under mirrored and ps equals single-process training', async (t) => {
  const server = await NatsServer.start({ maxPayload: 256 * 1024 });
  t.teardown(() => server.stop());
  const engine = await selectBackend({ backend: 'cpu' });
  const ratings = await loadJobDataset({ source: 'synthetic:tiny', seed: SEED });
  const digits = loadBundledDigits({ seed: SEED });
  const images: JobDataset = { ...ratings, images: { train: firstImages(digits.train, 96), test: firstImages(digits.test, 48), numClasses: 10 } };
  const history = groupRows(ratings.train, 'user');
  const held = (kind: ExampleKind, task: string, ds: JobDataset): EvalData => {
    if (kind === 'images') return { images: { pixels: ds.images?.test.pixels ?? new Float32Array(0), label: ds.images?.test.labels ?? new Int32Array(0) }, numItems: 0 };
    if (task === 'ranking') return { testRows: groupRows(ds.test, 'user'), history, numItems: ds.numItems, ks: [5, 10] };
    return { ratings: ds.test, history, itemHistory: groupRows(ds.train, 'item'), numItems: ds.numItems };
  };

  for (const [n, c] of cases.entries()) {
    const ds = c.images === true ? images : ratings;
    const entry = modelEntry(c.name);
    const dataHyper = { numUsers: ds.numUsers, numItems: ds.numItems, globalMean: ds.globalMean, numClasses: 10 };
    const hyper = { ...Object.fromEntries(Object.entries(dataHyper).filter(([k]) => (DATA_HYPER as readonly string[]).includes(k) && k in entry.defaults)), ...c.hyper };
    const make = () => createModel(c.name, hyper);
    const model = make();
    const kind = exampleKindOf(model);
    const feedKind = { kind, ...(model.needsHistory === true ? { history: true } : {}) };
    const train = exampleSet(kind, { ratings: ds.train, ...(ds.images !== undefined ? { images: ds.images.train } : {}) });
    const label = c.label ?? c.name;

    // Mirrored: 2 ranks × B against one process with 2B.
    const local2B = trainLocal({ engine, model: make(), train, history, batchSize: 2 * B, epochs: 1, seed: SEED, optimizer: c.optimizer });
    const job = `zoo${n}`;
    const nc = await connect({ servers: [server.url] });
    const shard = serveDataShard(nc, { job, shard: 0, of: 1, dataset: ds, batchSize: B, epochs: 1, seed: SEED });
    const ncs = await Promise.all([0, 1].map(() => connect({ servers: [server.url] })));
    const groups = await Promise.all([0, 1].map((rank) => ProcessGroup.init({ nc: ncs[rank], job, worldSize: 2, rank, timeoutMs: 30_000 })));
    const mirrored = await Promise.all(
      [0, 1].map((rank) => runMirroredTrainer({ pg: groups[rank], engine, model: make(), data: new DataClient(ncs[rank], { job, shards: 1 }).distributed(rank, 2, feedKind), optimizer: c.optimizer, seed: SEED })),
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

    const metrics = evaluateModel(engine, model, merged, held(kind, model.task ?? 'rating', ds));
    t.ok(Object.values(metrics).length > 0 && Object.values(metrics).every((x) => Number.isFinite(x)), `${label}: held-out ${JSON.stringify(Object.fromEntries(Object.entries(metrics).slice(0, 4)))}`);
  }
});
