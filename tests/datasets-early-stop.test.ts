// A validation set carved from training and early stopping, through a real job: the validation
// metric is evaluated each epoch, the job stops PATIENCE epochs after the best one, and the model
// it keeps is the best epoch's (metrics.json: bestEpoch and the validation curve; checkpoints/best/
// outside the --keep-checkpoints rotation), for ps and for mirrored.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { loadParams } from '@actorflow/embeddings';
import { selectBackend } from '@actorflow/engine';
import { heldOutOf, loadJobDataset } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { trainerStateCodec } from '@actorflow/protocol';
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
      ...['--hyper', 'dim=32', '--hyper', 'reg=0', '--lr', '0.05', '--l2', '0', '--epochs', `${EPOCHS}`, '--batch-size', '256'],
      ...['--trainers', '1', '--data-shards', '2', '--ps-shards', '1', '--eval-every', '0', '--backend', 'cpu'],
      // Frequent checkpoints and a rotation of one: the best epoch must survive it.
      ...['--checkpoint-every', '10', '--keep-checkpoints', '1'],
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

  // The rotation kept one step checkpoint; the best epoch is in checkpoints/best/, outside it, with the saved model's parameters.
  const ckpts = readdirSync(join(out, 'checkpoints')).filter((n) => /^\d+$/.test(n));
  t.equal(ckpts.length, 1, `--keep-checkpoints 1: one step checkpoint left (${ckpts.join(', ')})`);
  const best = JSON.parse(readFileSync(join(out, 'checkpoints', 'best', 'best.json'), 'utf8')) as { bestEpoch: number; value: number; part: string };
  t.equal(best.bestEpoch, m.bestEpoch, 'checkpoints/best is the best epoch');
  t.equal(best.part, 'params.bin');
  t.same(loadParams(join(out, 'checkpoints', 'best', 'params.bin')).tables, saved.tables, "checkpoints/best/params.bin holds the saved model's parameters");
});

t.test("no --epochs, --validation, --early-stop: mf's recommended early stopping (5 % validation, patience 2, up to 10 epochs)", async (t) => {
  // The overfitting MF of the test above, so the recommendation stops it after a few epochs.
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'apps/job/main.ts'),
      ...['--job', 'esr', '--dataset', 'synthetic:tiny', '--out', 'esr', '--hyper', 'dim=32', '--hyper', 'reg=0', '--lr', '0.05', '--l2', '0', '--batch-size', '256'],
      ...['--trainers', '1', '--data-shards', '1', '--ps-shards', '1', '--eval-every', '0', '--backend', 'cpu'],
    ],
    { cwd: join(root, 'apps/job'), encoding: 'utf8', timeout: 600_000, env },
  );
  t.equal(r.status, 0, r.stderr.slice(-3000));
  t.match(r.stdout, /^early stopping: validation 5 % of training, patience 2, up to 10 epochs \(the model's recommended; --epochs N or --early-stop 0 to turn it off\)$/m);
  const out = join(dir, 'esr');
  const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Metrics;
  t.type(m.bestEpoch, 'number', 'metrics.json has bestEpoch');
  t.equal(m.validation.patience, 2);
  t.ok(m.validation.stoppedEarly, `stopped early (${m.validation.curve.length} of 10 epochs evaluated)`);
  t.equal(m.validation.curve.at(-1)?.epoch, m.bestEpoch + 2, 'two epochs after the best one');
  const config = JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')) as { dataset: { validation?: string } };
  t.equal(config.dataset.validation, '0.05');
  t.equal((JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as { epochs: number }).epochs, 10);
});

t.test('mirrored, 2 trainers: --validation 0.1 --early-stop 2 scores each epoch-end replica and keeps the best epoch (model and checkpoints/best)', async (t) => {
  const PATIENCE = 2;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'apps/job/main.ts'),
      ...['--job', 'esm', '--strategy', 'mirrored', '--dataset', 'synthetic:tiny', '--out', 'esm', '--validation', '0.1', '--early-stop', `${PATIENCE}`],
      ...['--hyper', 'dim=32', '--hyper', 'reg=0', '--lr', '0.05', '--l2', '0', '--epochs', '40', '--batch-size', '128'],
      ...['--trainers', '2', '--data-shards', '1', '--eval-every', '0', '--backend', 'cpu', '--keep-checkpoints', '1'],
    ],
    { cwd: join(root, 'apps/job'), encoding: 'utf8', timeout: 600_000, env },
  );
  t.equal(r.status, 0, r.stderr.slice(-3000));
  const out = join(dir, 'esm');
  const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Metrics & { validation: { curve: { epoch: number; step: number; value: number }[] } };
  const curve = m.validation.curve;
  t.ok(m.validation.stoppedEarly, `stopped early (${curve.length} epochs evaluated)`);
  const values = curve.map((p) => p.value);
  const bestIdx = values.indexOf(Math.min(...values));
  t.equal(m.bestEpoch, curve[bestIdx].epoch, 'bestEpoch is the epoch of the lowest validation RMSE');
  t.equal(curve.at(-1)?.epoch, m.bestEpoch + PATIENCE, `stopped ${PATIENCE} epochs after the best`);
  // Each point is an epoch-end replica: epoch e's replica is at e × (steps per epoch).
  const perEpoch = curve[0].step;
  t.ok(perEpoch > 0);
  t.same(
    curve.map((p) => p.step),
    curve.map((p) => p.epoch * perEpoch),
    'every validation point is scored on the replica of its epoch’s last step',
  );

  const config = JSON.parse(readFileSync(join(out, 'model', 'config.json'), 'utf8')) as { hyper: Record<string, number>; dataset: { split: string; seed: number } };
  const ds = await loadJobDataset({ source: 'synthetic:tiny', split: config.dataset.split, seed: config.dataset.seed, validation: '0.1' });
  const saved = loadParams(join(out, 'model', 'params.bin'));
  const params: ParamStore = { tables: Object.fromEntries(saved.tables.map((x) => [x.name, x])), dense: { ...saved.dense } };
  const model = createModel('mf', config.hyper);
  const engine = await selectBackend({ backend: 'cpu' });
  const test = heldOutOf(model, ds);
  const validation = evaluateModel(engine, model, params, { ...test, ratings: ds.validation ?? test.ratings });
  t.ok(Math.abs(validation.rmse - values[bestIdx]) < 1e-9, `the saved model's validation RMSE ${validation.rmse} is the best epoch's ${values[bestIdx]}`);
  t.ok(Math.abs(evaluateModel(engine, model, params, test).rmse - m.metrics.rmse) < 1e-9, "metrics.json's test RMSE is the saved model's");

  // checkpoints/best/trainer.bin: the best epoch's whole TrainerState (replica, optimizer, data position), beside a rotation of one.
  t.equal(readdirSync(join(out, 'checkpoints')).filter((n) => /^\d+$/.test(n)).length, 1, 'one step checkpoint left');
  const state = trainerStateCodec.decode(new Uint8Array(readFileSync(join(out, 'checkpoints', 'best', 'trainer.bin'))));
  t.equal(state.step, curve[bestIdx].step, 'the best checkpoint is the best epoch’s last step');
  t.equal(state.epoch, m.bestEpoch - 1, '… of the best epoch (0-based)');
  t.equal(state.stepInEpoch, perEpoch, '… at its end');
  for (const [name, tbl] of Object.entries(state.params.tables)) t.same(tbl.data, params.tables[name].data, `trainer.bin's ${name} is the saved model's`);
});
