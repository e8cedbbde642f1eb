import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlagError } from '@actorflow/bus';
import { createModel } from '@actorflow/models';
import { initParams } from '@actorflow/strategies';
import type { JobConfig } from '@actorflow/protocol';
import {
  ModelNotSavedError,
  UnknownWorkloadError,
  appendEvalHistory,
  gradientWorkload,
  knnWorkload,
  listModels,
  openedGradientModel,
  registerWorkload,
  workloadFor,
  writeGradientModel,
  writeMetricsJson,
  type Workload,
} from '../mod.ts';

t.test('every model finds its workload: gradient models share one, kNN has its own', async (t) => {
  for (const m of ['mf', 'neumf', 'autorec', 'mnist-cnn']) t.equal(workloadFor(m).name, 'gradient', m);
  t.equal(workloadFor('knn').name, 'knn');
  t.throws(() => workloadFor('nope'), UnknownWorkloadError);
  t.throws(() => workloadFor('nope'), /unknown model 'nope'; the models are mf, .*knn/);
  const names = listModels().map((m) => m.name);
  t.ok(names.includes('knn') && names.includes('mf'));
  t.equal(names.indexOf('knn'), names.length - 1, 'the gradient models first');
  t.ok(listModels().every((m) => m.description.length > 0 && typeof m.hyper === 'object'));
  t.equal(workloadFor('knn').hasParameters({ model: 'knn' }), false);
  t.equal(workloadFor('mf').hasParameters({ model: 'mf' }), true);
  t.same(workloadFor('knn').launchInfo('knn').recommended, { epochs: 1 });
  t.equal(workloadFor('mnist-cnn').launchInfo('mnist-cnn').input, 'images');
});

t.test('a registered workload takes over the names it handles, and can be replaced', async (t) => {
  const mine: Workload = { ...knnWorkload, name: 'toy', handles: (m) => m === 'toy', models: () => [{ name: 'toy', description: 'a toy', hyper: {} }] };
  registerWorkload(mine);
  t.equal(workloadFor('toy'), mine);
  t.ok(listModels().some((m) => m.name === 'toy'));
  const again = { ...mine };
  registerWorkload(again);
  t.equal(workloadFor('toy'), again, 'same name: replaced, not duplicated');
  t.equal(listModels().filter((m) => m.name === 'toy').length, 1);
});

t.test('aggregator flags are checked before anything connects', async (t) => {
  const role = gradientWorkload.aggregator('mf', { job: 'j1', 'ps-shard': '1', 'ps-shards': '2' });
  t.equal(role.name, 'aggregator-1');
  t.equal(role.rank, '1/2');
  t.equal(role.job, 'j1');
  t.throws(() => gradientWorkload.aggregator('mf', { strategy: 'sync' }), FlagError);
  t.throws(() => gradientWorkload.aggregator('mf', { optimizer: 'lbfgs' }), /--optimizer must be adam, adagrad, sgd, rmsprop, got 'lbfgs'/);
  t.throws(() => gradientWorkload.aggregator('mf', { 'ps-shard': '2', 'ps-shards': '2' }), /--ps-shard 2 must be below --ps-shards 2/);
  t.throws(() => gradientWorkload.aggregator('mf', { hyper: ['nope=1'] }), /no such hyper-parameter/);
  t.throws(() => gradientWorkload.aggregator('mf', { hyper: ['dim=x'] }), /must be a number/);
  t.throws(() => gradientWorkload.aggregator('mf', { staleness: 'later' }), FlagError);
  t.throws(() => gradientWorkload.aggregator('mf', { 'restore-shard': '/nonexistent/ps-0.bin' }), /--restore-shard \/nonexistent\/ps-0.bin/);
  t.throws(() => gradientWorkload.aggregator('nope', {}), FlagError);
  const knn = knnWorkload.aggregator('knn', { job: 'k', hyper: ['k=10'] });
  t.equal(knn.name, 'aggregator-knn');
  t.throws(() => knnWorkload.aggregator('knn', { 'ps-shards': '2' }), /kNN has no parameter shards/);
  t.throws(() => knnWorkload.aggregator('knn', { hyper: ['similarity=jaccard'] }), FlagError);
});

t.test('kNN plans its steps (similarity blocks); gradient models do not', async (t) => {
  const config = {
    job: 'k',
    strategy: 'ps',
    worldSize: 2,
    model: 'knn',
    hyper: { blocks: 8, numUsers: 50, numItems: 40 },
    optimizer: { name: 'sgd', lr: 0 },
    psShards: 1,
    staleness: 'none',
    seed: 1,
  } as unknown as JobConfig;
  t.equal(knnWorkload.plannedSteps(config, 'ps', 2), 8);
  t.equal(knnWorkload.plannedSteps(config, 'mirrored', 3), 3);
  t.equal(knnWorkload.exampleKind(config), undefined);
  const mf = { ...config, model: 'mf', hyper: { numUsers: 5, numItems: 4 } } as JobConfig;
  t.equal(gradientWorkload.plannedSteps(mf, 'ps', 2), undefined);
  t.equal(gradientWorkload.exampleKind(mf), 'ratings');
});

t.test('the saved model: params.bin + config.json, never a non-finite one; eval history and metrics.json', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'workloads-'));
  const config = {
    job: 'j',
    strategy: 'ps',
    worldSize: 1,
    model: 'mf',
    hyper: { numUsers: 6, numItems: 5, dim: 3 },
    optimizer: { name: 'adam', lr: 0.01 },
    psShards: 1,
    staleness: 'none',
    seed: 3,
  } as JobConfig;
  const model = createModel('mf', config.hyper);
  const params = initParams(model, 3);
  const paths = writeGradientModel(join(dir, 'model'), model, params, config, { dataset: { source: 'synthetic:tiny' }, ratingRange: [1, 5] });
  t.ok(existsSync(paths.params));
  const saved = JSON.parse(readFileSync(paths.config, 'utf8')) as Record<string, unknown>;
  t.same(saved.dataset, { source: 'synthetic:tiny' });
  t.same(saved.ratingRange, [1, 5]);
  checkOpened(t, openedGradientModel(model, params, 5));
  const bad = { tables: { ...params.tables }, dense: { ...params.dense } };
  const first = Object.values(bad.tables)[0];
  first.data[0] = Number.NaN;
  t.throws(() => writeGradientModel(join(dir, 'bad'), model, bad, config, { dataset: {} }), ModelNotSavedError);
  t.notOk(existsSync(join(dir, 'bad')), 'nothing written');
  appendEvalHistory(dir, { job: 'j', step: 10, metrics: { rmse: 0.9, mae: 0.7 }, ts: 1 });
  appendEvalHistory(dir, { job: 'j', step: 20, metrics: { rmse: 0.8, mae: 0.6 }, ts: 2, final: true });
  t.equal(readFileSync(join(dir, 'eval.jsonl'), 'utf8').trim().split('\n').length, 2);
  t.same(readFileSync(join(dir, 'eval.csv'), 'utf8').trim().split('\n'), ['ts,step,final,mae,rmse', '1,10,false,0.7,0.9', '2,20,true,0.6,0.8']);
  const m = writeMetricsJson(dir, { job: 'j', metrics: { rmse: 0.8 } });
  t.same(JSON.parse(readFileSync(m, 'utf8')), { job: 'j', metrics: { rmse: 0.8 } });
});

function checkOpened(t: Test, opened: ReturnType<typeof openedGradientModel>): void {
  t.equal(opened.name, 'mf');
  t.equal(opened.clipsScores, true);
  const near = opened.similar(2, 3, 5);
  t.equal(near.length, 3);
  t.notOk(
    near.some((x) => x.index === 2),
    'the item itself excluded',
  );
  t.ok(near[0].score >= near[1].score && near[1].score >= near[2].score, 'best first');
}
