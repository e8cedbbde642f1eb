// A validation set carved from training and early stopping, through a real job: the validation
// metric is evaluated each epoch, the job stops PATIENCE epochs after the best one, and the model
// it keeps is the best epoch's (metrics.json: bestEpoch and the validation curve).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { loadParams } from '@actorflow/embeddings';
import { selectBackend } from '@actorflow/engine';
import { heldOutOf, loadJobDataset } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { evaluateModel, type ParamStore } from '@actorflow/strategies';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'datasets-early-stop-'));
const env = { ...process.env, NATS_URL: '', INIT_CWD: dir };

interface Metrics {
  metrics: Record<string, number>;
  bestEpoch: number;
  validation: { metric: string; patience: number; curve: { epoch: number; value: number }[]; bestEpoch: number; stoppedEarly: boolean };
}

t.test('--validation 0.1 --early-stop 2 on an overfitting MF: stops after the best epoch + 2, keeps the best epoch', async (t) => {
  const EPOCHS = 40;
  const PATIENCE = 2;
  // Large factors, no regularisation, a high learning rate: the validation RMSE turns up after a few epochs.
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'apps/job/main.ts'),
      ...['--job', 'es', '--dataset', 'synthetic:tiny', '--out', 'es', '--validation', '0.1', '--early-stop', `${PATIENCE}`],
      ...['--hyper', 'dim=32', '--lr', '0.05', '--l2', '0', '--epochs', `${EPOCHS}`, '--batch-size', '256'],
      ...['--trainers', '1', '--data-shards', '2', '--ps-shards', '1', '--eval-every', '0', '--backend', 'cpu'],
    ],
    { cwd: join(root, 'apps/job'), encoding: 'utf8', timeout: 600_000, env },
  );
  t.equal(r.status, 0, r.stderr.slice(-3000));
  const out = join(dir, 'es');
  const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Metrics;
  const curve = m.validation.curve;
  t.equal(m.validation.metric, 'rmse');
  t.ok(m.validation.stoppedEarly, `stopped early (${curve.length} of ${EPOCHS} epochs evaluated)`);
  t.ok(curve.length < EPOCHS, 'before the last epoch');
  const values = curve.map((p) => p.value);
  const bestIdx = values.indexOf(Math.min(...values));
  t.equal(m.bestEpoch, curve[bestIdx].epoch, 'bestEpoch is the epoch of the lowest validation RMSE');
  t.equal(m.validation.bestEpoch, m.bestEpoch);
  t.equal(curve.at(-1)?.epoch, m.bestEpoch + PATIENCE, `stopped ${PATIENCE} epochs after the best`);
  t.ok(
    curve.slice(bestIdx + 1).every((p) => p.value >= values[bestIdx]),
    'no improvement after the best epoch',
  );
  t.match(r.stdout, new RegExp(`early stop: no improvement for ${PATIENCE} epoch\\(s\\); keeping epoch ${m.bestEpoch}`));

  // The saved model is the best epoch's: its validation RMSE is the curve's best, and the job's test metrics are its own.
  const config = JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')) as {
    hyper: Record<string, number>;
    dataset: { source: string; split: string; seed: number; validation?: string };
  };
  t.equal(config.dataset.validation, '0.1', 'the model records its validation spec');
  const ds = await loadJobDataset({ source: 'synthetic:tiny', split: config.dataset.split, seed: config.dataset.seed, validation: '0.1' });
  const saved = loadParams(join(out, 'model', 'params.bin'));
  const params: ParamStore = { tables: Object.fromEntries(saved.tables.map((x) => [x.name, x])), dense: { ...saved.dense } };
  const model = createModel('mf', config.hyper);
  const engine = await selectBackend({ backend: 'cpu' });
  const test = heldOutOf(model, ds);
  const validation = evaluateModel(engine, model, params, { ...test, ratings: ds.validation ?? test.ratings });
  t.ok(Math.abs(validation.rmse - values[bestIdx]) < 1e-9, `the saved model's validation RMSE ${validation.rmse} is the best epoch's ${values[bestIdx]}`);
  t.ok(Math.abs(evaluateModel(engine, model, params, test).rmse - m.metrics.rmse) < 1e-9, "metrics.json's test RMSE is the saved model's");
});
