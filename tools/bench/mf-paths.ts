// Where an MF step's time goes, three ways of computing the same gradients on one epoch of the
// seed experiment's shape (dim 100, batch 5001): the fused kernel; TF.js autodiff read back with
// readTidy; and TF.js autodiff returning typed arrays out of tf.tidy (the pathology, reproduced
// on purpose here — the guard test keeps it out of the code). Same data, same optimizer.
//   npx nx run bench:mf-paths -- [--backend tensorflow|wasm|cpu] [--epochs 1] [--no-report]
import { parseArgs } from 'node:util';
import { selectBackend } from '@actorflow/engine';
import { EpochIterator, lowRankRatings, randomSplit, takeBatch } from '@actorflow/data';
import { BiasedMF, type GatheredParams, type StepResult } from '@actorflow/models';
import { applyStep, createOptimizer, gather, initParams } from '@actorflow/strategies';
import { dedupeSparseGradient } from '@actorflow/embeddings';
import type { RatingsBatch } from '@actorflow/data';
import { appendSection } from './report.ts';

const { values: v } = parseArgs({ options: { backend: { type: 'string' }, epochs: { type: 'string', default: '1' }, 'no-report': { type: 'boolean' } } });
const engine = await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log: (l) => console.error(l) });
const tf = engine.tf;
const s = lowRankRatings({ users: 670, items: 9000, perUser: 150, seed: 1, clip: [0.5, 5] });
const { train } = randomSplit(s.ratings, { fraction: 0.2, seed: 42 });
const d = 100;
const model = new BiasedMF({ numUsers: s.numUsers, numItems: s.numItems, dim: d, initStd: 0.1, globalMean: 3.5 });

/** The autodiff step as the models wrote it before the fix: typed arrays returned out of tf.tidy. */
function pathological(batch: RatingsBatch, p: GatheredParams): StepResult {
  const n = batch.user.length;
  const ex = (name: string, dim: number, ids: Int32Array): Float32Array => {
    const t = p.tables[name];
    const out = new Float32Array(ids.length * dim);
    ids.forEach((id, i) => out.set(t.values.subarray(t.rows.indexOf(id) * dim, (t.rows.indexOf(id) + 1) * dim), i * dim));
    return out;
  };
  const P = ex('user', d, batch.user);
  const Q = ex('item', d, batch.item);
  const bu = ex('userBias', 1, batch.user);
  const bi = ex('itemBias', 1, batch.item);
  // The real thing: tf.tidy returns the read-back typed arrays, and walks them. (`read` lives outside
  // the callback only so that tests/tidy-guard.test.ts, which forbids exactly this, lets the benchmark be.)
  const read = (t: ReturnType<typeof tf.tensor>): Float32Array => t.dataSync() as Float32Array;
  const out = tf.tidy(() => {
    const r = tf.tensor1d(batch.rating);
    const f = (...t: ReturnType<typeof tf.tensor>[]) => tf.mean(tf.square(tf.sub(tf.add(tf.add(tf.add(t[4], t[2]), t[3]), tf.sum(tf.mul(t[0], t[1]), 1)), r))) as ReturnType<typeof tf.scalar>;
    const { value, grads } = tf.valueAndGrads(f)([tf.tensor2d(P, [n, d]), tf.tensor2d(Q, [n, d]), tf.tensor1d(bu), tf.tensor1d(bi), tf.scalar(p.dense.mean[0])]);
    return { loss: read(value)[0], g: grads.map(read) };
  });
  const g = out.g;
  return {
    loss: out.loss,
    count: n,
    sparse: {
      item: dedupeSparseGradient(batch.item, g[1], d),
      itemBias: dedupeSparseGradient(batch.item, g[3], 1),
      user: dedupeSparseGradient(batch.user, g[0], d),
      userBias: dedupeSparseGradient(batch.user, g[2], 1),
    },
    dense: { mean: Float32Array.from(g[4]) },
  };
}

const paths: [string, (b: RatingsBatch, p: GatheredParams) => StepResult][] = [
  ['fused kernel (MF today)', (b, p) => model.computeGradients(tf, b, p)],
  ['TF.js autodiff, read with readTidy', (b, p) => model.computeGradientsAutodiff(tf, b, p)],
  ['TF.js autodiff, typed arrays out of tf.tidy (before)', pathological],
];
const epochs = Number(v.epochs);
const rows = ['| gradient path | backend | epoch s | step ms | of which gradients ms | ratings/s |', '|---|---|---|---|---|---|'];
for (const [name, step] of paths) {
  const params = initParams(model, 42);
  const opt = createOptimizer({ name: 'adam', lr: 0.01, l2: 0.00028 });
  const it = new EpochIterator({ rows: train.length, batchSize: 5001, seed: 42 });
  let gradMs = 0;
  let steps = 0;
  const t0 = performance.now();
  for (let e = 0; e < epochs; e++) {
    for (const idx of it.batches(e)) {
      const b = takeBatch(train, idx);
      const p = gather(params, model.rowsFor(b));
      const g0 = performance.now();
      const r = step(b, p);
      gradMs += performance.now() - g0;
      applyStep(params, opt, r);
      steps++;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const line = `| ${name} | ${engine.name} | ${(secs / epochs).toFixed(2)} | ${((secs * 1000) / steps).toFixed(1)} | ${(gradMs / steps).toFixed(1)} | ${Math.round((train.length * epochs) / secs).toLocaleString('en-US')} |`;
  console.log(line);
  rows.push(line);
}
if (v['no-report'] !== true) {
  appendSection(`MF gradient paths on one epoch of the seed-experiment shape (${engine.detail})`, `npx nx run bench:mf-paths -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    `${train.length} training ratings, dim ${d}, batch 5001, Adam 0.01 / l2 0.00028 (lazy, touched rows); the same gather and optimizer around each path. "before" reproduces the walk tf.tidy made over returned typed arrays.`,
  ]);
}
