// kNN as a user runs it: the job launcher starts a real nats-server, 2 data shards, the
// aggregator (config owner and similarity-block collector), 2 trainers that split the blocks, and
// the evaluator, all as separate processes. kNN has no gradients, so both strategies do the same
// work; either way the job's RMSE must equal a single process's KnnModel.fit on the same split.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { loadJobDataset } from '@actorflow/feed';
import { KnnModel, knnMetrics, knnSettings, readNeighbours, type KnnHyper } from '@actorflow/knn';

const root = resolve(import.meta.dirname, '..');
const runJob = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NATS_URL: '' } });

/** The single-process reference on the launcher's defaults (split random:0.1, seed 42). */
async function reference(hyper: KnnHyper): Promise<{ model: KnnModel; metrics: Record<string, number> }> {
  const data = await loadJobDataset({ source: 'synthetic:tiny', split: 'random:0.1', seed: 42 });
  const model = KnnModel.fit(data.train, knnSettings(hyper).options, { numUsers: data.numUsers, numItems: data.numItems });
  return { model, metrics: knnMetrics(model, data.test) };
}

interface Metrics {
  readonly metrics: Record<string, number>;
  readonly steps: number;
  readonly checkpoint: { readonly neighbours: string; readonly config: string };
}

for (const [strategy, hyper] of [
  ['ps', {}],
  ['mirrored', { kind: 'user', similarity: 'adjusted-cosine', k: 20, blocks: 3 }],
] as const) {
  t.test(`${strategy} job: 2 trainers split the blocks; RMSE equals the single-process fit`, async (t) => {
    const out = join(tmpdir(), `actorflow-knn-${strategy}-${process.pid}`);
    const hyperFlags = Object.entries(hyper).flatMap(([k, v]) => ['--hyper', `${k}=${String(v)}`]);
    const run = runJob(['--job', `e2e-knn-${strategy}`, '--model', 'knn', '--strategy', strategy, '--trainers', '2', '--dataset', 'synthetic:tiny', ...hyperFlags, '--out', out]);
    t.equal(run.status, 0, run.stderr.slice(-2000));
    const blocks = 'blocks' in hyper ? hyper.blocks : 8;
    t.match(
      run.stdout,
      new RegExp(`step ${strategy === 'ps' ? blocks : Math.ceil(blocks / 2)}/${strategy === 'ps' ? blocks : Math.ceil(blocks / 2)} \\(100 %\\)`),
      'progress counts similarity blocks',
    );
    const result = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Metrics;
    const ref = await reference(hyper);
    const diff = Math.abs(result.metrics.rmse - ref.metrics.rmse);
    t.ok(diff < 1e-6, `job RMSE ${result.metrics.rmse.toFixed(6)} vs single process ${ref.metrics.rmse.toFixed(6)} (|Δ| ${diff.toExponential(1)})`);
    for (const k of ['mae', 'rmse@10', 'rmse@20', 'rmse@40', 'rmse@80', 'globalMean.rmse'])
      t.ok(Math.abs(result.metrics[k] - ref.metrics[k]) < 1e-6, `${k} ${result.metrics[k].toFixed(6)} = ${ref.metrics[k].toFixed(6)}`);
    t.ok(result.metrics.rmse < 0.9 * result.metrics['globalMean.rmse'], `kNN ${result.metrics.rmse.toFixed(4)} beats the global mean ${result.metrics['globalMean.rmse'].toFixed(4)}`);
    t.equal(result.steps, blocks, 'steps = similarity blocks');
    t.same(readNeighbours(result.checkpoint.neighbours), ref.model.neighbours, 'saved neighbour lists = single process');
    const config = JSON.parse(readFileSync(result.checkpoint.config, 'utf8')) as { model: string; hyper: Record<string, unknown>; dataset: { source: string } };
    t.equal(config.model, 'knn');
    t.match(config.hyper, hyper);
    t.equal(config.dataset.source, 'synthetic:tiny');
    t.ok(existsSync(join(out, 'eval.jsonl')), 'eval history kept');
    t.match(readFileSync(join(out, 'logs', 'aggregator-0.log'), 'utf8'), new RegExp(`all ${blocks} similarity blocks in`));
    t.notOk(existsSync(join(out, 'logs', 'aggregator-1.log')), 'one aggregator, even in ps');
  });
}

t.test('a bad kNN hyper-parameter fails the job, naming it', async (t) => {
  const out = join(tmpdir(), `actorflow-knn-bad-${process.pid}`);
  const run = runJob(['--job', 'e2e-knn-bad', '--model', 'knn', '--dataset', 'synthetic:tiny', '--hyper', 'similarity=jaccard', '--out', out]);
  t.equal(run.status, 1);
  t.match(run.stderr, /actor aggregator-0 exited with code 2/, 'a usage error of the aggregator');
  // The launcher shows the log's tail (the usage text); the reason is just above it.
  t.match(readFileSync(join(out, 'logs', 'aggregator-0.log'), 'utf8'), /similarity must be 'cosine', 'pearson' or 'adjusted-cosine', got 'jaccard'/);
});
