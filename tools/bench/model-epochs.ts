// Training-epoch time of zoo models on every TF.js backend that initialises here (native
// tensorflow, wasm, cpu): one process, the single-process trainer, the model's registered defaults
// and recommended optimizer, the same data and seed on each backend — so the rows differ only by
// the engine. The held-out metric after the epoch is reported too: backends must agree on it.
// CPU time is the process's (user + system, every thread) over the training epochs, so cpu s above
// epoch s means the backend ran on more than one core.
//   npx nx run bench:model-epochs -- [--models autorec,neumf] [--backends tensorflow,wasm,cpu] [--dataset synthetic:small] [--epochs 1] [--batch 256]
//     [--limit-examples N] [--write-data DIR] [--no-report]
// --limit-examples N trains on the first N examples only (smoke runs; default the whole training set).
// --write-data DIR writes, per model, what it trains on for bench:vs-torch-models' PyTorch scripts:
// DIR/<model>.train.csv (user,item,rating; 0-based ids; the ratings of the training examples, in
// example order), DIR/<model>.history.csv (models that read users' histories: NeuMF's negatives
// exclude them) and DIR/<model>.json (numUsers, numItems, globalMean, examples, batch, optimizer, hyper).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { availableBackends, selectBackend, type BackendName } from '@actorflow/engine';
import { exampleCount, exampleSet, takeBatch, takeImages, takeRows, type ExampleSet, type InteractionsBatch } from '@actorflow/data';
import { dataFacts, heldOutOf, loadJobDataset } from '@actorflow/feed';
import { createModel, exampleKindOf, modelEntry, withDataHyper } from '@actorflow/models';
import { evaluateModel, headlineMetric, trainLocal } from '@actorflow/strategies';
import { appendSection } from './report.ts';

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    backends: { type: 'string' },
    dataset: { type: 'string' },
    epochs: { type: 'string' },
    batch: { type: 'string' },
    'limit-examples': { type: 'string' },
    'write-data': { type: 'string' },
    'no-report': { type: 'boolean' },
  },
});
const models = (values.models ?? 'autorec,neumf').split(',');
const epochs = Number(values.epochs ?? 1);
const source = values.dataset ?? 'synthetic:small';
const limit = values['limit-examples'] !== undefined ? Number(values['limit-examples']) : undefined;
if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new Error(`--limit-examples must be a positive integer, got ${values['limit-examples']}`);
const backends = values.backends !== undefined ? (values.backends.split(',') as BackendName[]) : await availableBackends();
const ds = await loadJobDataset({ source, seed: 42 }, (l) => console.error(l));

/** The first n examples of a set (all of them when n is undefined or at least the set's size). */
function firstExamples(set: ExampleSet, n: number | undefined): ExampleSet {
  if (n === undefined || n >= exampleCount(set)) return set;
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  switch (set.kind) {
    case 'ratings':
      return { kind: 'ratings', ratings: { ...takeBatch(set.ratings, idx), length: n } };
    case 'images': {
      const b = takeImages(set.images, idx);
      return { kind: 'images', images: { pixels: b.pixels, labels: b.label, n } };
    }
    default:
      return { kind: set.kind, rows: takeRows(set.rows, idx) };
  }
}

/** user,item,rating lines (0-based ids, header line) of parallel columns. */
function csv(user: ArrayLike<number>, item: ArrayLike<number>, rating: ArrayLike<number>): string {
  const lines = ['user,item,rating'];
  for (let k = 0; k < user.length; k++) lines.push(`${user[k]},${item[k]},${rating[k]}`);
  return `${lines.join('\n')}\n`;
}

/** A CSR row set back as rating triples, rows in order (item rows: the row id is the item). */
function rowsCsv(rows: InteractionsBatch, rowsAreItems: boolean): string {
  const rowId = new Int32Array(rows.items.length);
  for (let k = 0; k < rows.user.length; k++) rowId.fill(rows.user[k], rows.offsets[k], rows.offsets[k + 1]);
  return rowsAreItems ? csv(rows.items, rowId, rows.values) : csv(rowId, rows.items, rows.values);
}

const cpuSeconds = (since: NodeJS.CpuUsage): number => ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(since));

const rows: string[] = ['| model | backend | examples/epoch | epoch (s) | cpu s/epoch | examples/s | held-out after the epoch |', '|---|---|---|---|---|---|---|'];
for (const name of models) {
  const entry = modelEntry(name);
  const hyper = withDataHyper(name, dataFacts(ds));
  const probe = createModel(name, hyper);
  const kind = exampleKindOf(probe);
  const train = firstExamples(exampleSet(kind, { ratings: ds.train, ...(ds.images !== undefined ? { images: ds.images.train } : {}) }), limit);
  const held = heldOutOf(probe, ds);
  const history = held.history;
  const batchSize = Number(values.batch ?? entry.recommended?.batchSize ?? 256);
  const optimizer = entry.recommended?.optimizer ?? { name: 'adam' as const, lr: 0.001 };
  if (values['write-data'] !== undefined && train.kind !== 'images') {
    const dir = values['write-data'];
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.train.csv`), train.kind === 'ratings' ? csv(train.ratings.user, train.ratings.item, train.ratings.rating) : rowsCsv(train.rows, train.kind === 'item-rows'));
    const withHistory = probe.needsHistory === true && history !== undefined;
    if (withHistory) writeFileSync(join(dir, `${name}.history.csv`), rowsCsv(history, false));
    const meta = {
      model: name,
      kind,
      numUsers: ds.numUsers,
      numItems: ds.numItems,
      globalMean: ds.globalMean,
      examples: exampleCount(train),
      batch: batchSize,
      optimizer,
      history: withHistory,
      hyper: { ...entry.defaults, ...hyper },
    };
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(meta)}\n`);
  }
  for (const backend of backends) {
    const engine = await selectBackend({ backend });
    const model = createModel(name, hyper);
    let examples = 0;
    let last = performance.now();
    const cpu0 = process.cpuUsage();
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
    const cpu = cpuSeconds(cpu0);
    const metric = headlineMetric(model).name;
    const value = evaluateModel(engine, model, r.params, held)[metric];
    const line = `| ${name} | ${backend}${engine.detail !== undefined && engine.detail !== backend ? `: ${engine.detail}` : ''} | ${examples / epochs} | ${(secs / epochs).toFixed(2)} | ${(cpu / epochs).toFixed(2)} | ${Math.round(examples / secs)} | ${metric} ${value.toFixed(4)} |`;
    console.log(line);
    rows.push(line);
  }
}
if (values['no-report'] !== true) {
  appendSection(`Model epochs per backend: ${models.join(', ')} on ${source}`, `npx nx run bench:model-epochs -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    `Defaults of each model and its recommended optimizer; batch as registered (else 256)${limit !== undefined ? `; the first ${limit} training examples only` : ''}. Examples are rows the model trains on (ratings with their sampled negatives counted once for NeuMF; item rows for AutoRec; user rows for Mult-VAE). cpu s: process CPU time (all threads) per epoch.`,
  ]);
}
