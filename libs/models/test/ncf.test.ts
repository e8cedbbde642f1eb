import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { Ncf, createModel, listModels, parseLayers, type GatheredParams } from '../mod.ts';
import { checkGradients, values } from './fd-check.ts';

const batch = { user: new Int32Array([0, 2, 0, 1]), item: new Int32Array([1, 1, 0, 2]), rating: new Float32Array([4, 2, 5, 3]) };
const dim = 3;
const model = new Ncf({ numUsers: 3, numItems: 3, dim, layers: [5, 4], initStd: 0.1, globalMean: 3.5 });

function params(): GatheredParams {
  const dense: Record<string, Float32Array> = {};
  model.denseSpecs().forEach((s, i) => {
    dense[s.name] = s.name === 'mean' ? new Float32Array([3.5]) : values(s.size, 10 + i, 0.6);
  });
  // Biases a little positive so no ReLU sits at its kink for this batch (finite differences would straddle it).
  for (const [k, v] of Object.entries(dense)) if (k.endsWith('.b') && k.includes('mlp')) v.fill(0.3);
  return {
    tables: { user: { rows: new Int32Array([0, 1, 2]), values: values(9, 1) }, item: { rows: new Int32Array([0, 1, 2]), values: values(9, 2) } },
    dense,
  };
}

t.test('ncf: specs, gradients match finite differences, loss is the MSE of predict', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  t.same(
    model.denseSpecs().map((s) => [s.name, s.size]),
    [
      ['ncf.mlp0.w', 30],
      ['ncf.mlp0.b', 5],
      ['ncf.mlp1.w', 20],
      ['ncf.mlp1.b', 4],
      ['ncf.out.w', 4],
      ['ncf.out.b', 1],
      ['mean', 1],
    ],
  );
  t.same(model.denseSpecs()[0].init, { kind: 'uniform', scale: Math.sqrt(6 / 11) }, 'Glorot uniform');
  const p = params();
  const res = model.computeGradients(tf, batch, p);
  t.equal(res.count, 4);
  t.same([...res.sparse.user.rows], [0, 1, 2]);
  const pred = model.predict(tf, batch, p);
  const mse = pred.reduce((s, y, i) => s + (y - batch.rating[i]) ** 2, 0) / 4;
  t.ok(Math.abs(mse - res.loss) < 1e-4, `loss ${res.loss} = MSE of predict ${mse}`);
  checkGradients(t, tf, model, batch, p);
  t.same(model.rowsFor(batch), { user: new Int32Array([0, 1, 2]), item: new Int32Array([0, 1, 2]) });
  t.equal(model.predict(tf, { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0) }, p).length, 0);
});

t.test('ncf: registry, hyper-parameters and errors', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  t.ok(listModels().some((m) => m.name === 'ncf'));
  const m = createModel('ncf', { numUsers: 4, numItems: 5, layers: '8, 4' });
  t.same(
    m
      .denseSpecs()
      .map((s) => s.size)
      .slice(0, 4),
    [32 * 8, 8, 8 * 4, 4],
    'default dim 16 → input 32',
  );
  t.equal(m.task, 'rating');
  t.same(parseLayers('x', 7), [7]);
  t.throws(() => parseLayers('x', '64,,0'), /positive integers/);
  t.throws(() => parseLayers('x', true), /must be a string/);
  t.throws(() => createModel('ncf', { numUsers: 1, numItems: 1, dim: 'a' }), /'dim' must be a number/);
  t.throws(() => new Ncf({ numUsers: 0, numItems: 1, dim: 1, layers: [1], initStd: 0.1, globalMean: 0 }), /numUsers/);
  t.throws(() => new Ncf({ numUsers: 1, numItems: 1, dim: 0, layers: [1], initStd: 0.1, globalMean: 0 }), /dim/);
  t.throws(() => new Ncf({ numUsers: 1, numItems: 1, dim: 1, layers: [], initStd: 0.1, globalMean: 0 }), /hidden layer/);
  t.throws(() => model.computeGradients(tf, { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0) }, params()), /empty batch/);
  t.throws(() => model.predict(tf, batch, { ...params(), dense: { ...params().dense, 'ncf.mlp0.w': new Float32Array(2) } }), /'ncf.mlp0.w' must have 30 values, got 2/);
  t.throws(() => model.predict(tf, batch, { tables: { user: params().tables.user }, dense: params().dense }), /table 'item' was not gathered/);
});

t.test('ncf: per-example L2 on the embedding rows is λ per observed rating (a row used c times gets 2λc/n·w), dense weights untouched, reg checked', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const reg = 0.1;
  const withReg = new Ncf({ numUsers: 3, numItems: 3, dim, layers: [5, 4], initStd: 0.1, globalMean: 3.5, reg });
  const p = params();
  const a = model.computeGradients(tf, batch, p);
  const b = withReg.computeGradients(tf, batch, p);
  const n = batch.user.length;
  const u = p.tables.user.values;
  // Users 0 (twice), 1 and 2 (once each); rows come sorted.
  t.same([...b.sparse.user.rows], [0, 1, 2]);
  for (const [at, c] of [
    [0, 2],
    [1, 1],
    [2, 1],
  ] as const) {
    for (let k = 0; k < dim; k++) {
      const want = ((2 * reg * c) / n) * u[at * dim + k];
      t.ok(Math.abs(b.sparse.user.values[at * dim + k] - a.sparse.user.values[at * dim + k] - want) < 1e-6, `user ${at} [${k}]: 2λ·${c}/${n}·w`);
    }
  }
  for (const [name, g] of Object.entries(a.dense)) t.same(b.dense[name], g, `dense ${name}: unchanged`);
  let pen = 0;
  for (let e = 0; e < n; e++) {
    for (let k = 0; k < dim; k++) pen += u[batch.user[e] * dim + k] ** 2 + p.tables.item.values[batch.item[e] * dim + k] ** 2;
  }
  t.ok(Math.abs(b.loss - a.loss - (reg * pen) / n) < 1e-5, 'loss + λ/n Σ_examples (‖u‖² + ‖i‖²)');
  t.throws(() => createModel('ncf', { numUsers: 3, numItems: 3, reg: -1 }), /'reg' \(per-example L2 λ\) must be a number >= 0/);
});
