// One global epoch across data shards, through real jobs (launcher, nats-server, actors as
// processes): a ps job with one trainer and --data-shards 1, 2 or 3 trains exactly the
// single-process model — same batches in the same order, every example once per epoch, the exact
// step total (never "step 1622/1600").
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { loadParams } from '@actorflow/embeddings';
import { selectBackend } from '@actorflow/engine';
import { loadJobDataset } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { trainLocal } from '@actorflow/strategies';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'datasets-epoch-'));
const env = { ...process.env, NATS_URL: '', INIT_CWD: dir };
// synthetic:tiny has 2003 training ratings: 19 batches of 110 per epoch, a multiple of neither 2 nor 3.
const BATCH = 110;
const EPOCHS = 2;
const SEED = 42;

interface Config {
  readonly hyper: Record<string, number>;
  readonly optimizer: { readonly name: 'adam'; readonly lr: number; readonly l2?: number };
}

t.test('ps, one trainer: --data-shards 1, 2 and 3 each train the single-process model, with the exact step total', async (t) => {
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: SEED });
  const perEpoch = Math.ceil(dataset.train.length / BATCH);
  t.ok(perEpoch % 2 !== 0 && perEpoch % 3 !== 0, `${perEpoch} batches per epoch`);
  const results: { rmse: number; params: Buffer }[] = [];
  for (const K of [1, 2, 3]) {
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(root, 'apps/job/main.ts'),
        ...['--job', `epoch-${K}`, '--dataset', 'synthetic:tiny', '--seed', `${SEED}`, '--out', `run-${K}`],
        ...['--trainers', '1', '--ps-shards', '1', '--data-shards', `${K}`, '--epochs', `${EPOCHS}`, '--batch-size', `${BATCH}`, '--eval-every', '0', '--backend', 'cpu'],
      ],
      { cwd: join(root, 'apps/job'), encoding: 'utf8', timeout: 300_000, env },
    );
    t.equal(run.status, 0, `K=${K}: ${run.stderr.slice(-2000)}`);
    const steps = [...run.stdout.matchAll(/step (\d+)\/(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    t.ok(steps.length > 0, `K=${K}: progress lines`);
    t.ok(
      steps.every(([done, total]) => total === perEpoch * EPOCHS && done <= total),
      `K=${K}: every progress line counts to exactly ${perEpoch * EPOCHS}: ${steps.map(([a, b]) => `${a}/${b}`).join(' ')}`,
    );
    t.same(steps.at(-1), [perEpoch * EPOCHS, perEpoch * EPOCHS], `K=${K}: ends at step ${perEpoch * EPOCHS}/${perEpoch * EPOCHS}`);
    const out = join(dir, `run-${K}`);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { metrics: { rmse: number } };
    results.push({ rmse: metrics.metrics.rmse, params: readFileSync(join(out, 'model', 'params.bin')) });
  }
  t.equal(results[1].rmse, results[0].rmse, 'K=2: the same test RMSE as K=1, to the last digit');
  t.equal(results[2].rmse, results[0].rmse, 'K=3: the same test RMSE as K=1');

  // The single process, with the job's own model configuration.
  const config = JSON.parse(readFileSync(join(dir, 'run-1', 'model', 'config.json'), 'utf8')) as Config;
  const engine = await selectBackend({ backend: 'cpu' });
  const local = trainLocal({ engine, model: createModel('mf', config.hyper), train: dataset.train, batchSize: BATCH, epochs: EPOCHS, seed: SEED, optimizer: config.optimizer });
  t.equal(local.steps, perEpoch * EPOCHS);
  for (const K of [1, 2, 3]) {
    const saved = loadParams(join(dir, `run-${K}`, 'model', 'params.bin'));
    for (const table of saved.tables) t.same(table.data, local.params.tables[table.name].data, `K=${K}: table ${table.name} equals the single-process result bit for bit`);
  }
});
