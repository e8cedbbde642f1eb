// The model zoo as users run it: `nx run job` with 2 trainer processes, in both strategies, for a
// model of every input kind (ratings with histories, item rows, user rows, images). Mirrored with
// one data shard sees exactly the single process's global batches, so its headline metric must
// match the single-process run closely; asynchronous ps (2 data shards, 2 parameter shards, 2
// trainers racing) must land near it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { selectBackend } from '@actorflow/engine';
import { exampleSet } from '@actorflow/data';
import { dataFacts, heldOutOf, loadJobDataset } from '@actorflow/feed';
import { createModel, exampleKindOf, withDataHyper } from '@actorflow/models';
import { evaluateModel, headlineMetric, trainLocal } from '@actorflow/strategies';

const root = resolve(import.meta.dirname, '..');
const runJob = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), ...args], { cwd: root, encoding: 'utf8', timeout: 600_000, env: { ...process.env, NATS_URL: '' } });

interface ZooCase {
  readonly model: string;
  readonly hyper: Record<string, number | string>;
  readonly dataset: string;
  readonly epochs: number;
  readonly batch: number;
  readonly lr: number;
  /** |distributed − single process| allowed for the headline metric: mirrored, ps. */
  readonly tol: readonly [number, number];
}

const cases: ZooCase[] = [
  { model: 'neumf', hyper: { dim: 8, layers: '16,8' }, dataset: 'synthetic:tiny', epochs: 4, batch: 64, lr: 0.01, tol: [0.005, 0.05] },
  { model: 'autorec', hyper: { hidden: 16 }, dataset: 'synthetic:tiny', epochs: 6, batch: 8, lr: 0.01, tol: [0.005, 0.03] },
  { model: 'multvae', hyper: { hidden: '32', latent: 8 }, dataset: 'synthetic:tiny', epochs: 6, batch: 8, lr: 0.01, tol: [0.005, 0.05] },
  // ps: one asynchronous epoch of the CNN lands 0.00–0.031 from the single process between runs (two trainers prefetching, stale pulls vary with load).
  // ps is asynchronous: how stale the two trainers' pushes are depends on the machine's load, and one
  // epoch of the CNN is where that shows most (|Δ| 0.02–0.03 on a quiet machine, 0.13 once on a loaded
  // CI run). 0.15 still fails a ps path that does not learn (chance is 0.1, the single process 0.87).
  { model: 'mnist-cnn', hyper: { filters: 4, dense: 16 }, dataset: 'mnist:bundled', epochs: 1, batch: 64, lr: 0.003, tol: [0.005, 0.15] },
  { model: 'svdpp', hyper: { dim: 8 }, dataset: 'synthetic:tiny', epochs: 10, batch: 64, lr: 0.003, tol: [0.005, 0.01] },
  { model: 'ncf', hyper: { dim: 8, layers: '16' }, dataset: 'synthetic:tiny', epochs: 10, batch: 64, lr: 0.003, tol: [0.005, 0.01] },
  { model: 'multdae', hyper: { hidden: '32', latent: 8 }, dataset: 'synthetic:tiny', epochs: 6, batch: 8, lr: 0.01, tol: [0.005, 0.05] },
  { model: 'mnist-ae', hyper: { code: 16 }, dataset: 'mnist:bundled', epochs: 1, batch: 128, lr: 0.003, tol: [0.005, 0.01] },
];

async function singleProcess(c: ZooCase, batch: number): Promise<{ name: string; value: number }> {
  const ds = await loadJobDataset({ source: c.dataset, split: 'random:0.1', seed: 42 });
  const model = createModel(c.model, withDataHyper(c.model, dataFacts(ds), c.hyper));
  const kind = exampleKindOf(model);
  const train = exampleSet(kind, { ratings: ds.train, ...(ds.images !== undefined ? { images: ds.images.train } : {}) });
  const engine = await selectBackend({ backend: 'wasm' });
  const held = heldOutOf(model, ds);
  const { params } = trainLocal({ engine, model, train, history: held.history, batchSize: batch, epochs: c.epochs, seed: 42, optimizer: { name: 'adam', lr: c.lr, l2: 0 } });
  const name = headlineMetric(model).name;
  return { name, value: evaluateModel(engine, model, params, held)[name] };
}

for (const c of cases) {
  for (const strategy of ['mirrored', 'ps'] as const) {
    t.test(`${c.model}: ${strategy} job with 2 trainer processes matches the single process`, async (t) => {
      const out = join(tmpdir(), `actorflow-zoo-${c.model}-${strategy}-${process.pid}`);
      const args = [
        '--job',
        `zoo-${c.model}-${strategy}`,
        '--model',
        c.model,
        '--strategy',
        strategy,
        '--trainers',
        '2',
        '--dataset',
        c.dataset,
        '--epochs',
        `${c.epochs}`,
        '--batch-size',
        `${c.batch}`,
        '--data-shards',
        strategy === 'mirrored' ? '1' : '2',
        '--ps-shards',
        '2',
        '--eval-every',
        '0',
        '--backend',
        'wasm',
        '--out',
        out,
        '--model-flag',
        'optimizer=adam',
        '--model-flag',
        `lr=${c.lr}`,
        '--model-flag',
        'l2=0',
        ...Object.entries(c.hyper).flatMap(([k, v]) => ['--hyper', `${k}=${v}`]),
      ];
      const run = runJob(args);
      t.equal(run.status, 0, run.stderr.slice(-3000));
      const { metrics } = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { metrics: Record<string, number> };
      // Mirrored: the global batch is 2 × B; ps: each trainer's batch is B.
      const { name, value: local } = await singleProcess(c, strategy === 'mirrored' ? 2 * c.batch : c.batch);
      const diff = Math.abs(metrics[name] - local);
      t.ok(diff <= c.tol[strategy === 'mirrored' ? 0 : 1], `${name}: job ${metrics[name]?.toFixed(4)} vs single process ${local.toFixed(4)} (|Δ| ${diff.toExponential(2)})`);
    });
  }
}
