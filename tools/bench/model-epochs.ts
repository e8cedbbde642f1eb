// Training-epoch time of zoo models on every TF.js backend that initialises here (native
// tensorflow, wasm, cpu): one process, the single-process trainer, the model's registered defaults
// and recommended optimizer, the same data and seed on each backend — so the rows differ only by
// the engine. The held-out metric after the epoch is reported too: backends must agree on it.
//   npx nx run bench:model-epochs -- [--models autorec,neumf] [--backends tensorflow,wasm,cpu] [--dataset synthetic:small] [--epochs 1] [--batch 256] [--no-report]
import { parseArgs } from 'node:util';
import { availableBackends, selectBackend, type BackendName } from '@actorflow/engine';
import { exampleSet } from '@actorflow/data';
import { dataFacts, heldOutOf, loadJobDataset } from '@actorflow/feed';
import { createModel, exampleKindOf, modelEntry, withDataHyper } from '@actorflow/models';
import { evaluateModel, headlineMetric, trainLocal } from '@actorflow/strategies';
import { appendSection } from './report.ts';

const { values } = parseArgs({
  options: { models: { type: 'string' }, backends: { type: 'string' }, dataset: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' }, 'no-report': { type: 'boolean' } },
});
const models = (values.models ?? 'autorec,neumf').split(',');
const epochs = Number(values.epochs ?? 1);
const source = values.dataset ?? 'synthetic:small';
const backends = values.backends !== undefined ? (values.backends.split(',') as BackendName[]) : await availableBackends();
const ds = await loadJobDataset({ source, seed: 42 }, (l) => console.error(l));
const rows: string[] = ['| model | backend | examples/epoch | epoch (s) | examples/s | held-out after the epoch |', '|---|---|---|---|---|---|'];
for (const name of models) {
  const entry = modelEntry(name);
  const hyper = withDataHyper(name, dataFacts(ds));
  const probe = createModel(name, hyper);
  const kind = exampleKindOf(probe);
  const train = exampleSet(kind, { ratings: ds.train, ...(ds.images !== undefined ? { images: ds.images.train } : {}) });
  const held = heldOutOf(probe, ds);
  const history = held.history;
  const batchSize = Number(values.batch ?? entry.recommended?.batchSize ?? 256);
  const optimizer = entry.recommended?.optimizer ?? { name: 'adam' as const, lr: 0.001 };
  for (const backend of backends) {
    const engine = await selectBackend({ backend });
    const model = createModel(name, hyper);
    let examples = 0;
    let last = performance.now();
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
      onStep: (s) => {
        examples += s.examples;
        if (performance.now() - last > 5000) {
          last = performance.now();
          console.error(`${name} on ${backend}: step ${s.step}, ${examples} examples, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        }
      },
    });
    const secs = (performance.now() - t0) / 1000;
    const metric = headlineMetric(model).name;
    const value = evaluateModel(engine, model, r.params, held)[metric];
    const line = `| ${name} | ${backend}${engine.detail !== undefined && engine.detail !== backend ? `: ${engine.detail}` : ''} | ${examples / epochs} | ${(secs / epochs).toFixed(2)} | ${Math.round(examples / secs)} | ${metric} ${value.toFixed(4)} |`;
    console.log(line);
    rows.push(line);
  }
}
if (values['no-report'] !== true) {
  appendSection(`Model epochs per backend: ${models.join(', ')} on ${source}`, `npx nx run bench:model-epochs -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    'Defaults of each model and its recommended optimizer; batch as registered (else 256). Examples are rows the model trains on (ratings with their sampled negatives counted once for NeuMF; item rows for AutoRec).',
  ]);
}
