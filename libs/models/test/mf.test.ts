import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { BiasedMF, ModelError, createModel, listModels, perExample, type GatheredParams } from '../mod.ts';

const batch = { user: new Int32Array([0, 2, 0]), item: new Int32Array([1, 1, 0]), rating: new Float32Array([4, 2, 5]) };
const dim = 3;

function params(): GatheredParams {
  const users = new Int32Array([0, 2]);
  const items = new Int32Array([0, 1]);
  const v = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + s) * 0.5);
  return {
    tables: { user: { rows: users, values: v(6, 1) }, item: { rows: items, values: v(6, 2) }, userBias: { rows: users, values: v(2, 3) }, itemBias: { rows: items, values: v(2, 4) } },
    dense: { mean: new Float32Array([3.5]) },
  };
}

for (const backend of ['cpu', 'wasm']) {
  t.test(`gradients match finite differences (${backend})`, async (t) => {
    const { tf } = await selectBackend({ backend });
    const model = new BiasedMF({ numUsers: 3, numItems: 2, dim, initStd: 0.1, globalMean: 3.5 });
    const p = params();
    const res = model.computeGradients(tf, batch, p);
    t.equal(res.count, 3);
    t.same([...res.sparse.user.rows], [0, 2], 'rows deduplicated and sorted');
    const lossAt = (q: GatheredParams): number => {
      const pred = model.predict(tf, batch, q);
      let s = 0;
      for (let i = 0; i < 3; i++) s += (pred[i] - batch.rating[i]) ** 2;
      return s / 3;
    };
    t.ok(Math.abs(lossAt(p) - res.loss) < 1e-5, 'loss equals the mean squared error of predict');
    const eps = 1e-2;
    for (const name of ['user', 'item', 'userBias', 'itemBias'] as const) {
      const vals = p.tables[name].values;
      for (let k = 0; k < vals.length; k++) {
        const plus = structuredClone(p);
        (plus.tables[name].values as Float32Array)[k] += eps;
        const minus = structuredClone(p);
        (minus.tables[name].values as Float32Array)[k] -= eps;
        const numeric = (lossAt(plus) - lossAt(minus)) / (2 * eps);
        t.ok(Math.abs(numeric - res.sparse[name].values[k]) < 2e-3, `${name}[${k}]: ${numeric.toFixed(4)} vs ${res.sparse[name].values[k].toFixed(4)}`);
      }
    }
    const up = structuredClone(p);
    (up.dense.mean as Float32Array)[0] += eps;
    const down = structuredClone(p);
    (down.dense.mean as Float32Array)[0] -= eps;
    t.ok(Math.abs((lossAt(up) - lossAt(down)) / (2 * eps) - res.dense.mean[0]) < 2e-3, 'mean');
  });
}

t.test('registry and bad input', async (t) => {
  t.ok(listModels().some((m) => m.name === 'mf'));
  const m = createModel('mf', { numUsers: 2, numItems: 2, dim: 4 });
  t.equal(m.tableSpecs().find((s) => s.name === 'user')?.dim, 4);
  t.throws(() => createModel('nope'), /unknown model 'nope'/);
  t.throws(() => createModel('mf', { numUsers: 2, numItems: 2, dimm: 4 }), /no hyper-parameter 'dimm'/);
  t.throws(() => createModel('mf', { numUsers: 2, numItems: 2, dim: 'x' }), /must be a number/);
  t.throws(() => new BiasedMF({ numUsers: 0, numItems: 1, dim: 1, initStd: 0.1, globalMean: 0 }), ModelError);
  t.throws(() => new BiasedMF({ numUsers: 1, numItems: 1, dim: 0.5, initStd: 0.1, globalMean: 0 }), /dim/);
  const { tf } = await selectBackend({ backend: 'cpu' });
  const model = new BiasedMF({ numUsers: 3, numItems: 2, dim, initStd: 0.1, globalMean: 3.5 });
  t.throws(() => model.computeGradients(tf, { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0) }, params()), /empty batch/);
  t.throws(() => model.computeGradients(tf, { ...batch, user: new Int32Array([0, 1, 0]) }, params()), /user row 1 was not gathered/);
  t.throws(() => model.predict(tf, batch, { ...params(), dense: {} }), /dense 'mean'/);
  const { user: _omit, ...rest } = params().tables;
  t.throws(() => model.predict(tf, batch, { tables: rest, dense: params().dense }), /table 'user' was not gathered/);
  t.throws(() => perExample(new Int32Array([5]), { rows: new Int32Array([1]), values: new Float32Array(1) }, 1, 'x'), /x row 5/);
});

t.test('mf: scoreItems equals predict on every (user, item) pair', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const model = new BiasedMF({ numUsers: 3, numItems: 2, dim, initStd: 0.1, globalMean: 3.5 });
  const history = { user: new Int32Array([0, 2]), offsets: new Int32Array([0, 1, 2]), items: new Int32Array([1, 0]), values: new Float32Array([4, 2]) };
  t.same(model.rowsForScoring(history), { user: new Int32Array([0, 2]), userBias: new Int32Array([0, 2]), item: new Int32Array([0, 1]), itemBias: new Int32Array([0, 1]) });
  const p = params();
  const scores = model.scoreItems(tf, history, p);
  const direct = model.predict(tf, { user: new Int32Array([0, 0, 2, 2]), item: new Int32Array([0, 1, 0, 1]), rating: new Float32Array(4) }, p);
  t.ok(
    scores.every((s, k) => Math.abs(s - direct[k]) < 1e-5),
    `${[...scores]} vs ${[...direct]}`,
  );
  t.equal(model.scoreItems(tf, { user: new Int32Array(0), offsets: new Int32Array([0]), items: new Int32Array(0), values: new Float32Array(0) }, p).length, 0);
});

for (const reg of [0, 0.05])
  t.test(`mf: the fused kernel equals the TF.js autodiff reference on a random batch with repeats (per-example reg ${reg})`, async (t) => {
    const { tf } = await selectBackend({ backend: 'cpu' });
    const d = 8;
    const model = new BiasedMF({ numUsers: 20, numItems: 30, dim: d, initStd: 0.1, globalMean: 3.5, reg });
    let s = 7;
    const rnd = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const n = 200;
    const b = {
      user: Int32Array.from({ length: n }, () => Math.floor(rnd() * 20)),
      item: Int32Array.from({ length: n }, () => Math.floor(rnd() * 30)),
      rating: Float32Array.from({ length: n }, () => 1 + Math.floor(rnd() * 5)),
    };
    const rows = model.rowsFor(b);
    const vals = (r: Int32Array, dim: number): Float32Array => Float32Array.from({ length: r.length * dim }, () => (rnd() - 0.5) * 0.6);
    const p: GatheredParams = {
      tables: {
        user: { rows: rows.user, values: vals(rows.user, d) },
        item: { rows: rows.item, values: vals(rows.item, d) },
        userBias: { rows: rows.userBias, values: vals(rows.userBias, 1) },
        itemBias: { rows: rows.itemBias, values: vals(rows.itemBias, 1) },
      },
      dense: { mean: new Float32Array([3.5]) },
    };
    const fused = model.computeGradients(tf, b, p);
    const ref = model.computeGradientsAutodiff(tf, b, p);
    t.ok(Math.abs(fused.loss - ref.loss) < 1e-5, `loss ${fused.loss} vs ${ref.loss}`);
    for (const name of ['user', 'item', 'userBias', 'itemBias']) {
      t.same([...fused.sparse[name].rows], [...ref.sparse[name].rows], `${name} rows`);
      const worst = fused.sparse[name].values.reduce((m, v, k) => Math.max(m, Math.abs(v - ref.sparse[name].values[k])), 0);
      t.ok(worst < 1e-5, `${name}: max |fused − autodiff| ${worst}`);
    }
    t.ok(Math.abs(fused.dense.mean[0] - ref.dense.mean[0]) < 1e-5, 'mean');
  });

t.test('mf: per-example L2 is λ per observed rating (a row used c times gets 2λc/n·w), and reg is checked', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const plain = new BiasedMF({ numUsers: 3, numItems: 2, dim, initStd: 0.1, globalMean: 3.5 });
  const reg = 0.1;
  const withReg = new BiasedMF({ numUsers: 3, numItems: 2, dim, initStd: 0.1, globalMean: 3.5, reg });
  const p = params();
  const a = plain.computeGradients(tf, batch, p);
  const b = withReg.computeGradients(tf, batch, p);
  // batch: user 0 twice, user 2 once (n = 3); user rows [0, 2].
  const uv = p.tables.user.values;
  for (let k = 0; k < dim; k++) {
    t.ok(Math.abs(b.sparse.user.values[k] - a.sparse.user.values[k] - ((2 * reg * 2) / 3) * uv[k]) < 1e-6, `user 0 [${k}]: 2λ·2/3·w`);
    t.ok(Math.abs(b.sparse.user.values[dim + k] - a.sparse.user.values[dim + k] - ((2 * reg * 1) / 3) * uv[dim + k]) < 1e-6, `user 2 [${k}]: 2λ·1/3·w`);
  }
  let pen = 0;
  const sq = (v: Float32Array, r: number, d: number): number => v.subarray(r * d, (r + 1) * d).reduce((s, x) => s + x * x, 0);
  const userAt = [0, 1, 0];
  const itemAt = [1, 1, 0];
  for (let e = 0; e < 3; e++) pen += sq(uv, userAt[e], dim) + sq(p.tables.item.values, itemAt[e], dim) + sq(p.tables.userBias.values, userAt[e], 1) + sq(p.tables.itemBias.values, itemAt[e], 1);
  t.ok(Math.abs(b.loss - a.loss - (reg * pen) / 3) < 1e-6, 'loss + λ/n Σ_examples ‖w‖²');
  t.throws(() => createModel('mf', { numUsers: 3, numItems: 2, reg: -1 }), ModelError, 'reg < 0 refused');
});
