import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { SvdPlusPlus, createModel, type GatheredParams, type RatingsWithHistory } from '../mod.ts';
import { checkGradients, values } from './fd-check.ts';

const dim = 3;
// Users 0 and 2; user 0 rated items {0, 1, 3}, user 2 rated {1}.
const batch: RatingsWithHistory = {
  user: new Int32Array([0, 2, 0]),
  item: new Int32Array([1, 1, 0]),
  rating: new Float32Array([4, 2, 5]),
  history: { user: new Int32Array([0, 2]), offsets: new Int32Array([0, 3, 4]), items: new Int32Array([0, 1, 3, 1]), values: new Float32Array([5, 4, 3, 2]) },
};
const model = new SvdPlusPlus({ numUsers: 3, numItems: 4, dim, initStd: 0.1, globalMean: 3.5 });

function params(): GatheredParams {
  const r = model.rowsFor(batch);
  const tables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
  for (const [i, s] of model.tableSpecs().entries()) tables[s.name] = { rows: r[s.name], values: values(r[s.name].length * s.dim, i + 1) };
  return { tables, dense: { mean: new Float32Array([3.5]) } };
}

t.test('svdpp: rows, the formula by hand, gradients by finite differences', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  t.same(model.rowsFor(batch).implicit, new Int32Array([0, 1, 3]), "implicit rows are the histories' items");
  const p = params();
  const row = (name: string, id: number): Float32Array => {
    const tb = p.tables[name];
    const d = tb.values.length / tb.rows.length;
    const k = tb.rows.indexOf(id);
    return tb.values.subarray(k * d, (k + 1) * d);
  };
  const pred = model.predict(tf, batch, p);
  // Example 0: user 0, item 1; N(0) = {0, 1, 3}.
  let dot = 0;
  for (let k = 0; k < dim; k++) {
    const implicit = (row('implicit', 0)[k] + row('implicit', 1)[k] + row('implicit', 3)[k]) / Math.sqrt(3);
    dot += row('item', 1)[k] * (row('user', 0)[k] + implicit);
  }
  const want = 3.5 + row('userBias', 0)[0] + row('itemBias', 1)[0] + dot;
  t.ok(Math.abs(pred[0] - want) < 1e-5, `r̂ = μ + b_u + b_i + q_i·(p_u + |N|^-½ Σ y_j): ${pred[0]} vs ${want}`);
  const res = model.computeGradients(tf, batch, p);
  t.same([...res.sparse.implicit.rows], [0, 1, 3]);
  const mse = pred.reduce((s, y, i) => s + (y - batch.rating[i]) ** 2, 0) / 3;
  t.ok(Math.abs(mse - res.loss) < 1e-4, 'loss is the MSE of predict');
  checkGradients(t, tf, model, batch, p);
  t.equal(model.predict(tf, { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0), history: batch.history }, p).length, 0);
});

t.test('svdpp: registry and errors', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const m = createModel('svdpp', { numUsers: 2, numItems: 3 });
  t.equal(m.needsHistory, true);
  t.equal(m.tableSpecs().find((s) => s.name === 'implicit')?.dim, 16);
  const { history: _h, ...bare } = batch;
  t.throws(() => model.rowsFor(bare), /carries no user histories/);
  t.throws(() => model.computeGradients(tf, { ...batch, user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0) }, params()), /empty batch/);
  t.throws(() => model.predict(tf, { ...batch, user: new Int32Array([0, 1, 0]) }, params()), /history has no row for user 1/);
  t.throws(() => model.predict(tf, batch, { ...params(), dense: {} }), /dense 'mean'/);
  t.throws(() => new SvdPlusPlus({ numUsers: 0, numItems: 1, dim: 1, initStd: 0.1, globalMean: 0 }), /numUsers/);
  t.throws(() => new SvdPlusPlus({ numUsers: 1, numItems: 1, dim: 1.5, initStd: 0.1, globalMean: 0 }), /dim/);
});

for (const reg of [0, 0.05])
  t.test(`svdpp: the fused kernel equals the TF.js autodiff reference (per-example reg ${reg})`, async (t) => {
    const { tf } = await selectBackend({ backend: 'cpu' });
    const p = params();
    const m = reg === 0 ? model : new SvdPlusPlus({ numUsers: 3, numItems: 4, dim, initStd: 0.1, globalMean: 3.5, reg });
    const fused = m.computeGradients(tf, batch, p);
    const ref = m.computeGradientsAutodiff(tf, batch, p);
    if (reg > 0) t.not(fused.loss, model.computeGradients(tf, batch, p).loss, 'the penalty counts in the loss');
    t.ok(Math.abs(fused.loss - ref.loss) < 1e-5, `loss ${fused.loss} vs ${ref.loss}`);
    for (const name of Object.keys(ref.sparse)) {
      t.same([...fused.sparse[name].rows], [...ref.sparse[name].rows], `${name} rows`);
      const worst = fused.sparse[name].values.reduce((m, v, k) => Math.max(m, Math.abs(v - ref.sparse[name].values[k])), 0);
      t.ok(worst < 1e-5, `${name}: max |fused − autodiff| ${worst}`);
    }
    t.ok(Math.abs(fused.dense.mean[0] - ref.dense.mean[0]) < 1e-5, 'mean');
  });
