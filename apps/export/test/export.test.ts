// Train tiny models in-process, save them as the launcher does (params.bin + config.json), export,
// load the LayersModel back (TF.js's own loader: from the files on any backend, and
// tf.loadLayersModel('file://…') through tfjs-node where it loads) and compare its predictions with
// our model's — cold-start rows and the rating-range clip included — to 1e-5.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { groupRows } from '@actorflow/data';
import { saveParams } from '@actorflow/embeddings';
import { selectBackend, type Tf } from '@actorflow/engine';
import { loadJobDataset } from '@actorflow/feed';
import { createModel, type TrainableModel } from '@actorflow/models';
import { clipToRange, gather, initParams, trainLocal, withColdStart, type ParamStore } from '@actorflow/strategies';
import { ExportError, buildLayersModel, exportModel } from '../src/export.ts';
import { tsxCommand } from '@actorflow/test-child';

const spec = { source: 'synthetic:tiny', split: 'random:0.2', seed: 3 };
const root = mkdtempSync(join(tmpdir(), 'export-'));

type LayersModel = Awaited<ReturnType<Tf['loadLayersModel']>>;

/** Trains `name` on synthetic:tiny and saves it as the launcher does; returns what the check needs. */
async function trained(tf: Tf, name: string, hyper: Record<string, number | string>, ratingRange?: [number, number]) {
  const engine = await selectBackend({ backend: 'cpu' });
  const ds = await loadJobDataset(spec);
  const fullHyper = { numUsers: ds.numUsers, numItems: ds.numItems, globalMean: ds.globalMean, ...hyper };
  const model = createModel(name, fullHyper) as TrainableModel<unknown>;
  const { params } = trainLocal({ engine, model, train: ds.train, batchSize: 128, epochs: 3, seed: 3, optimizer: { name: 'adam', lr: 0.02 } });
  const dir = join(root, name, 'model');
  mkdirSync(dir, { recursive: true });
  saveParams(join(dir, 'params.bin'), { tables: Object.values(params.tables), dense: params.dense, meta: { job: 't', model: name } });
  const config = {
    job: 't',
    strategy: 'ps',
    worldSize: 1,
    model: name,
    hyper: fullHyper,
    optimizer: { name: 'adam', lr: 0.02 },
    psShards: 1,
    staleness: 'none',
    seed: 3,
    dataset: spec,
    ...(ratingRange !== undefined ? { ratingRange } : {}),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  // Every (user, item) pair of the test split plus every user with item 0 (some never trained: cold start).
  const users = Int32Array.from([...ds.test.user, ...Array.from({ length: ds.numUsers }, (_, u) => u)]);
  const items = Int32Array.from([...ds.test.item, ...Array.from({ length: ds.numUsers }, () => 0)]);
  const forEval = withColdStart(model, params as ParamStore, groupRows(ds.train, 'user'));
  const batch = { user: users, item: items, rating: new Float32Array(users.length) };
  const ours = clipToRange(model.predict(tf, batch, gather(forEval, model.rowsFor(batch))), ratingRange);
  return { dir, users, items, ours, ds };
}

function predictLayers(tf: Tf, m: LayersModel, users: Int32Array, items: Int32Array): Float32Array {
  const u = tf.tensor2d(users, [users.length, 1], 'int32');
  const i = tf.tensor2d(items, [items.length, 1], 'int32');
  const out = m.predict([u, i]) as ReturnType<Tf['tensor']>;
  const v = out.dataSync() as Float32Array;
  tf.dispose([u, i, out]);
  return Float32Array.from(v);
}

/** TF.js's loader on the exported files, without any file-system plugin (works on every backend). */
async function loadFromFiles(tf: Tf, dir: string): Promise<LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: Parameters<Tf['io']['fromMemory']>[1] }[] };
  const bin = readFileSync(join(dir, json.weightsManifest[0].paths[0]));
  return tf.loadLayersModel(tf.io.fromMemory(json.modelTopology, json.weightsManifest[0].weights, bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength)));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
  return m;
}

const cases: { name: string; hyper: Record<string, number | string>; range?: [number, number] }[] = [
  { name: 'mf', hyper: { dim: 8, initStd: 0.1 }, range: [1, 5] },
  { name: 'mf', hyper: { dim: 4, initStd: 0.1 } },
  { name: 'ncf', hyper: { dim: 6, layers: '16,8', initStd: 0.1 }, range: [1, 5] },
];

for (const c of cases) {
  t.test(`${c.name}${c.range !== undefined ? ' clipped' : ''}: the exported LayersModel predicts what our model predicts`, async (t) => {
    const engine = await selectBackend({ backend: 'cpu' });
    const tf = engine.tf;
    const m = await trained(tf, c.name, c.hyper, c.range);
    const out = join(root, `${c.name}-${c.range !== undefined ? 'clip' : 'raw'}-tfjs`);
    const r = await exportModel(tf, m.dir, out);
    t.equal(r.model, c.name);
    t.equal(r.coldStart, c.name === 'mf', 'cold-start rows filled for models that declare them');
    t.same(r.ratingRange, c.range);
    t.ok(existsSync(join(out, 'model.json')) && existsSync(join(out, 'weights.bin')), 'model.json + weights.bin');
    const loaded = await loadFromFiles(tf, out);
    const theirs = predictLayers(tf, loaded, m.users, m.items);
    t.equal(theirs.length, m.ours.length);
    const d = maxAbsDiff(theirs, m.ours);
    t.ok(d <= 1e-5, `max |difference| ${d.toExponential(2)} ≤ 1e-5 over ${theirs.length} pairs`);
    if (c.range !== undefined)
      t.ok(
        theirs.every((v) => v >= c.range![0] && v <= c.range![1]),
        'inside the rating range',
      );
    t.ok(new Set(Array.from(theirs.slice(0, 50), (v) => v.toFixed(3))).size > 5, 'not a constant');
    loaded.dispose();
  });
}

// tf.loadLayersModel('file://…/model.json') as a user in Node would write it (needs tfjs-node's file IO).
t.test("tf.loadLayersModel('file://…') through tfjs-node", async (t) => {
  const cpu = await selectBackend({ backend: 'cpu' });
  const m = await trained(cpu.tf, 'mf', { dim: 8, initStd: 0.1 }, [1, 5]);
  const out = join(root, 'mf-file-url');
  await exportModel(cpu.tf, m.dir, out);
  try {
    await import('@tensorflow/tfjs-node');
  } catch (err) {
    t.skip(`tfjs-node does not load here (${(err as Error).message.split('\n')[0]}); the from-files check above covers the format`, async () => undefined);
    return;
  }
  const tf = cpu.tf; // the same tfjs-core: tfjs-node adds the file:// handler
  const loaded = await tf.loadLayersModel(`file://${join(out, 'model.json')}`);
  const d = maxAbsDiff(predictLayers(tf, loaded, m.users, m.items), m.ours);
  t.ok(d <= 1e-5, `max |difference| ${d.toExponential(2)} ≤ 1e-5`);
  t.same(
    loaded.inputLayers.map((l) => l.name),
    ['user', 'item'],
  );
  t.same(loaded.outputs[0].shape, [null, 1]);
  loaded.dispose();
});

t.test('neumf: the exported LayersModel gives the logits our model predicts', async (t) => {
  const engine = await selectBackend({ backend: 'cpu' });
  const tf = engine.tf;
  const hyper = { numUsers: 30, numItems: 20, dim: 4, mlpDim: 6, layers: '12,8', negatives: 2, initStd: 0.5 };
  const model = createModel('neumf', hyper) as TrainableModel<unknown>;
  const params = initParams(model, 11); // untrained: the same arithmetic, non-trivial weights
  const dir = join(root, 'neumf', 'model');
  mkdirSync(dir, { recursive: true });
  saveParams(join(dir, 'params.bin'), { tables: Object.values(params.tables), dense: params.dense });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ job: 't', model: 'neumf', hyper, dataset: spec, ratingRange: [1, 5] }));
  const r = await exportModel(tf, dir, join(root, 'neumf-tfjs'));
  t.same([r.numUsers, r.numItems, r.ratingRange, r.coldStart], [30, 20, undefined, false], 'a ranking model: logits, not clipped');
  const users = Int32Array.from({ length: 600 }, (_, k) => k % 30);
  const items = Int32Array.from({ length: 600 }, (_, k) => Math.floor(k / 30));
  const batch = { user: users, item: items, rating: new Float32Array(600), history: { user: new Int32Array(0), offsets: Int32Array.of(0), items: new Int32Array(0), values: new Float32Array(0) } };
  const ours = model.predict(tf, batch, gather(params, { gmfUser: allIds(30), mlpUser: allIds(30), gmfItem: allIds(20), mlpItem: allIds(20) }));
  const loaded = await loadFromFiles(tf, join(root, 'neumf-tfjs'));
  const d = maxAbsDiff(predictLayers(tf, loaded, users, items), ours);
  t.ok(d <= 1e-5, `max |difference| ${d.toExponential(2)} ≤ 1e-5 over 600 pairs`);
  t.ok(new Set(Array.from(ours.slice(0, 50), (v) => v.toFixed(3))).size > 5, 'not a constant');
  loaded.dispose();
});

const allIds = (n: number): Int32Array => Int32Array.from({ length: n }, (_, k) => k);

t.test('what cannot be exported fails with what to do', async (t) => {
  const engine = await selectBackend({ backend: 'cpu' });
  const tf = engine.tf;
  await t.rejects(exportModel(tf, join(root, 'nope'), join(root, 'x')), /config\.json not found: pass --model-dir/);
  const dir = join(root, 'vae', 'model');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: 'multvae', hyper: {} }));
  writeFileSync(join(dir, 'params.bin'), '');
  await t.rejects(exportModel(tf, dir, join(root, 'x')), new ExportError('multvae cannot be exported yet (exportable: mf, ncf, neumf)'));
  t.throws(() => buildLayersModel(tf, 'mf', { tables: {}, dense: {} }), /mf: the parameters have no table 'user'/);
  const one = { name: 'user', rows: 2, dim: 1, data: new Float32Array(2) };
  const p: ParamStore = { tables: { user: one, item: { ...one, name: 'item' }, userBias: { ...one, name: 'userBias' }, itemBias: { ...one, name: 'itemBias' } }, dense: {} };
  t.throws(() => buildLayersModel(tf, 'mf', p), /dense 'mean' must have 1 values, got none/);
  t.throws(() => buildLayersModel(tf, 'mf', { ...p, dense: { mean: Float32Array.of(3) } }, { ratingRange: [5, 1] }), /not a range/);
  t.throws(() => buildLayersModel(tf, 'ncf', p), /no hidden layer/);
  t.throws(() => buildLayersModel(tf, 'svdpp', p), /svdpp cannot be exported yet/);
});

t.test('the command line', async (t) => {
  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  const run = (...args: string[]) => (({ command, args: argv }) => spawnSync(command, argv, { encoding: 'utf8', timeout: 120_000 }))(tsxCommand(main, args));
  const modelDir = join(root, 'mf', 'model'); // written by the tests above
  const out = join(root, 'cli-out');
  const ok = run('--model-dir', modelDir, '--out', out, '--backend', 'cpu');
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /exported mf \(\d+ users, \d+ items, clipped to \[1, 5\], cold-start rows filled\) to .*model\.json/);
  t.ok(existsSync(join(out, 'model.json')));
  const bad = run('--out', out);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /export: --model-dir is required/);
  t.match(run('--help').stdout, /Exportable models: mf, ncf, neumf/);
});
