// End to end, as a user runs it: the job launcher starts a real nats-server, 2 data shards,
// 2 parameter-server aggregators, 2 trainers and the evaluator as separate processes. The
// asynchronous result must reach the single-process RMSE on the same split within 0.01.
import t from 'tap';
import { readScalars } from '@actorflow/tensorboard';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { selectBackend } from '@actorflow/engine';
import { loadJobDataset } from '@actorflow/feed';
import { BiasedMF } from '@actorflow/models';
import { trainLocal } from '@actorflow/strategies';

const root = resolve(import.meta.dirname, '..');
const runJob = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NATS_URL: '' } });

/** The single-process reference: the job's defaults (synthetic:small, seed 42, MF dim 16, Adam) with batch 1024. */
async function singleProcessRmse(epochs: number): Promise<number> {
  const data = await loadJobDataset({ source: 'synthetic:small', seed: 42 });
  const engine = await selectBackend({ backend: 'wasm' });
  const local = trainLocal({
    engine,
    // The job's defaults: mf's registered hyper-parameters (per-example reg 0.05) and recommended optimizer.
    model: new BiasedMF({ numUsers: data.numUsers, numItems: data.numItems, dim: 16, initStd: 0.1, reg: 0.05, globalMean: data.globalMean }),
    train: data.train,
    test: data.test,
    batchSize: 1024,
    epochs,
    seed: 42,
    optimizer: { name: 'adam', lr: 0.01, l2: 0 },
  });
  return local.metrics?.rmse ?? Number.NaN;
}

t.test('ps job: 2 shards + 2 aggregators + 2 trainers + evaluator reach the single-process RMSE', async (t) => {
  const out = join(tmpdir(), `actorflow-job-${process.pid}`);
  const run = runJob(['--job', 'e2e-ps', '--strategy', 'ps', '--trainers', '2', '--data-shards', '2', '--ps-shards', '2', '--epochs', '8', '--out', out]);
  t.equal(run.status, 0, run.stderr.slice(-2000));
  t.match(run.stdout, /step \d+\/\d+ \(\d+ %\)/, 'shows progress');
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { metrics: { rmse: number }; noiseFloorRmse: number };
  t.ok(existsSync(join(out, 'model', 'params.bin')), 'trained model saved');
  t.ok(existsSync(join(out, 'eval.jsonl')), 'eval history kept');
  t.ok(existsSync(join(out, 'logs', 'trainer-1.log')), 'actor logs kept');
  // TensorBoard: loss per rank and the eval metrics, read back from the event files.
  const scalars = readScalars(join(out, 'tensorboard'));
  t.ok((scalars['loss/rank0']?.length ?? 0) > 10 && (scalars['loss/rank1']?.length ?? 0) > 10, 'loss of both ranks in the TensorBoard events');
  t.ok(
    scalars['eval/rmse']?.some((p) => Math.abs(p.value - metrics.metrics.rmse) < 1e-6),
    'the final eval RMSE is among the TensorBoard scalars',
  );

  const local = await singleProcessRmse(8);
  const diff = Math.abs(metrics.metrics.rmse - local);
  t.ok(diff < 0.01, `job RMSE ${metrics.metrics.rmse.toFixed(4)} vs single process ${local.toFixed(4)} (|Δ| ${diff.toFixed(4)})`);
});

t.test('mirrored job: 2 ranks as separate processes reach the single-process RMSE within 0.005', async (t) => {
  const out = join(tmpdir(), `actorflow-mirrored-${process.pid}`);
  // One data shard: then the global batches are exactly the single process's (2 shards take turns).
  const run = runJob(['--job', 'e2e-mirrored', '--strategy', 'mirrored', '--trainers', '2', '--data-shards', '1', '--epochs', '8', '--batch-size', '512', '--out', out]);
  t.equal(run.status, 0, run.stderr.slice(-2000));
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { metrics: { rmse: number } };
  t.ok(existsSync(join(out, 'model', 'params.bin')), 'trained model saved');
  const local = await singleProcessRmse(8); // batch 1024 = 2 ranks × 512: the same global batches
  const diff = Math.abs(metrics.metrics.rmse - local);
  t.ok(diff < 0.005, `mirrored RMSE ${metrics.metrics.rmse.toFixed(4)} vs single process ${local.toFixed(4)} (|Δ| ${diff.toExponential(2)})`);
});

t.test('mirrored job over 2 data shards and the ring all-reduce finishes and learns', async (t) => {
  const out = join(tmpdir(), `actorflow-mirrored2-${process.pid}`);
  const run = runJob(['--job', 'e2e-mirrored2', '--strategy', 'mirrored', '--allreduce', 'ring', '--trainers', '2', '--data-shards', '2', '--epochs', '8', '--batch-size', '512', '--out', out]);
  t.equal(run.status, 0, run.stderr.slice(-2000));
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { metrics: { rmse: number } };
  const local = await singleProcessRmse(8);
  t.ok(Math.abs(metrics.metrics.rmse - local) < 0.005, `RMSE ${metrics.metrics.rmse.toFixed(4)} vs single process ${local.toFixed(4)} (other batch order, same data)`);
});

t.test('a failing actor fails the job with its name and last words; bad flags are usage errors', async (t) => {
  // A missing file is caught before anything starts (a usage error) ...
  const missing = runJob(['--job', 'e2e-missing', '--dataset', '/nonexistent/ratings.csv', '--out', join(tmpdir(), `actorflow-missing-${process.pid}`)]);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /no such file: \/nonexistent\/ratings\.csv/);
  // ... a file that exists but does not parse fails in the data shard, once the job runs.
  const garbage = join(tmpdir(), `actorflow-garbage-${process.pid}.csv`);
  writeFileSync(garbage, 'userId,movieId,rating,timestamp\n1,2,not-a-rating,0\n');
  const bad = runJob(['--job', 'e2e-bad', '--dataset', garbage, '--out', join(tmpdir(), `actorflow-bad-${process.pid}`)]);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /job failed: actor data-shard-\d exited with code 1/);
  t.match(bad.stderr, /not-a-rating|rating/);
  const usage = runJob(['--trainers', 'two']);
  t.equal(usage.status, 2);
  t.match(usage.stderr, /--trainers must be a positive integer, got 'two'/);
  const strategy = runJob(['--strategy', 'hogwild']);
  t.equal(strategy.status, 2);
  t.match(strategy.stderr, /--strategy must be ps or mirrored/);
});
