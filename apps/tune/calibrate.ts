// The calibration grid behind docs/MODELS.md's "defaults vs best grid point" table, in one process:
// each setting trained with trainLocal (the single-process reference, which a ps job with one
// trainer equals bit for bit, docs/MODELS.md "One global epoch") on the job's dataset and split,
// scored by the evaluator's own function. `npx nx run tune` runs the same grid as launcher jobs.
//   npx tsx apps/tune/calibrate.ts --model mf --grid l2=0,0.0002 --grid reg=0.01 [--dataset synthetic:small] [--epochs N] [--backend tensorflow]
// Each --grid is searched on its own, the others at their defaults (a line search per key, not the product).
import { parseArgs } from 'node:util';
import { exampleSet } from '@actorflow/data';
import { selectBackend } from '@actorflow/engine';
import { dataFacts, heldOutOf, loadJobDataset } from '@actorflow/feed';
import { createModel, exampleKindOf, modelEntry, withDataHyper } from '@actorflow/models';
import { evaluateModel, trainLocal } from '@actorflow/strategies';

const { values } = parseArgs({
  options: { model: { type: 'string' }, grid: { type: 'string', multiple: true }, dataset: { type: 'string' }, epochs: { type: 'string' }, backend: { type: 'string' } },
});
const name = values.model ?? 'mf';
const entry = modelEntry(name);
const engine = await selectBackend({ backend: values.backend ?? 'tensorflow', log: (l) => console.error(l) });
const source = values.dataset ?? 'synthetic:small';
const ds = await loadJobDataset({ source, seed: 42 });
const epochs = Number(values.epochs ?? entry.recommended?.epochs ?? 10);
const batchSize = entry.recommended?.batchSize ?? 1024;
const baseOpt = entry.recommended?.optimizer ?? { name: 'adam' as const, lr: 0.01, l2: 2e-4 };
const run = (label: string, hyper: Record<string, number>, l2: number): number => {
  const model = createModel(name, { ...withDataHyper(name, dataFacts(ds)), ...hyper });
  const held = heldOutOf(model, ds);
  const train = exampleSet(exampleKindOf(model), { ratings: ds.train });
  const t0 = performance.now();
  const r = trainLocal({ engine, model, train, ...(held.history !== undefined ? { history: held.history } : {}), batchSize, epochs, seed: 42, optimizer: { ...baseOpt, l2 } });
  const m = evaluateModel(engine, model, r.params, held);
  console.log(`${name}\t${label}\trmse ${m.rmse.toFixed(4)}\tmae ${(m.mae ?? Number.NaN).toFixed(4)}\t${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return m.rmse;
};
console.log(`# ${name} on ${source} (random:0.1, seed 42), ${epochs} epochs × batch ${batchSize}, ${baseOpt.name} lr ${baseOpt.lr}, ${engine.name}`);
const defaultHyper: Record<string, number> = {};
run(`defaults (l2 ${baseOpt.l2 ?? 0}${typeof entry.defaults.reg === 'number' ? `, reg ${entry.defaults.reg}` : ''})`, defaultHyper, baseOpt.l2 ?? 0);
for (const g of values.grid ?? []) {
  const [key, list] = g.split('=');
  for (const v of list.split(',').map(Number)) {
    if (key === 'l2') run(`l2 ${v}`, { ...(typeof entry.defaults.reg === 'number' ? { reg: 0 } : {}) }, v);
    else run(`${key} ${v} (l2 0)`, { [key]: v }, 0);
  }
}
