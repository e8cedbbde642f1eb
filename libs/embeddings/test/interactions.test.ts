import t from 'tap';
import { EmbeddingError, biasedDotMse, biasedDotPredict, rowPositions, sortedIndexOf, type BiasedDotInputs } from '../mod.ts';

const d = 3;
const v = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.3 + s) * 0.5);

function inputs(extra = false): BiasedDotInputs {
  const users = new Int32Array([0, 2, 5]); // 5 is gathered but no example uses it
  const items = new Int32Array([1, 4]);
  return {
    user: new Int32Array([0, 2, 0, 2]),
    item: new Int32Array([4, 1, 1, 4]),
    dim: d,
    users: { rows: users, values: v(9, 1) },
    items: { rows: items, values: v(6, 2) },
    userBias: { rows: users, values: v(3, 3) },
    itemBias: { rows: new Int32Array([1, 4]), values: v(2, 4) },
    mean: 3.5,
    ...(extra ? { userExtra: v(9, 5) } : {}),
  };
}
const target = new Float32Array([4, 2, 5, 1]);

/** The model written out naively in float64, per example. */
function naive(x: BiasedDotInputs): number[] {
  return Array.from(x.user, (u, e) => {
    const pu = x.users.rows.indexOf(u);
    const qi = x.items.rows.indexOf(x.item[e]);
    let dot = 0;
    for (let k = 0; k < d; k++) dot += (x.users.values[pu * d + k] + (x.userExtra?.[pu * d + k] ?? 0)) * x.items.values[qi * d + k];
    return x.mean + x.userBias.values[x.userBias.rows.indexOf(u)] + x.itemBias.values[x.itemBias.rows.indexOf(x.item[e])] + dot;
  });
}

t.test('sortedIndexOf and rowPositions', async (t) => {
  const rows = new Int32Array([1, 4, 9]);
  t.equal(sortedIndexOf(rows, 4), 1);
  t.equal(sortedIndexOf(rows, 9), 2);
  t.equal(sortedIndexOf(rows, 5), -1);
  t.equal(sortedIndexOf(new Int32Array(0), 1), -1);
  t.same([...rowPositions(rows, new Int32Array([9, 1, 1]), 'x')], [2, 0, 0]);
  t.throws(() => rowPositions(rows, new Int32Array([3]), 'item'), /item row 3 was not gathered/);
});

for (const extra of [false, true]) {
  t.test(`predict and gradients equal the formula and finite differences (userExtra: ${extra})`, async (t) => {
    const x = inputs(extra);
    const want = naive(x);
    const got = biasedDotPredict(x);
    want.forEach((w, e) => t.ok(Math.abs(got[e] - w) < 1e-5, `prediction ${e}`));
    const g = biasedDotMse(x, target);
    const mse = (p: number[]): number => p.reduce((s, y, e) => s + (y - target[e]) ** 2, 0) / p.length;
    t.ok(Math.abs(g.loss - mse(want)) < 1e-5, 'loss is the mean squared error');
    t.same([...g.user.rows], [0, 2], 'an untouched gathered row gets no gradient (lazy optimizers count steps)');
    t.equal(g.user.values.length, 2 * d);
    t.same([...g.item.rows], [1, 4]);
    const eps = 1e-3;
    const fd = (mutate: (y: BiasedDotInputs, s: number) => void): number => {
      const plus = structuredClone(x);
      mutate(plus, eps);
      const minus = structuredClone(x);
      mutate(minus, -eps);
      return (mse(naive(plus)) - mse(naive(minus))) / (2 * eps);
    };
    for (let k = 0; k < 2 * d; k++) {
      t.ok(Math.abs(fd((y, s) => ((y.users.values as Float32Array)[k] += s)) - g.user.values[k]) < 2e-3, `user value ${k}`);
      t.ok(Math.abs(fd((y, s) => ((y.items.values as Float32Array)[k] += s)) - g.item.values[k]) < 2e-3, `item value ${k}`);
      if (extra) t.ok(Math.abs(fd((y, s) => ((y.userExtra as Float32Array)[k] += s)) - (g.userExtra as Float32Array)[k]) < 2e-3, `userExtra value ${k}`);
    }
    for (let k = 0; k < 2; k++) {
      t.ok(Math.abs(fd((y, s) => ((y.userBias.values as Float32Array)[k] += s)) - g.userBias.values[k]) < 2e-3, `user bias ${k}`);
      t.ok(Math.abs(fd((y, s) => ((y.itemBias.values as Float32Array)[k] += s)) - g.itemBias.values[k]) < 2e-3, `item bias ${k}`);
    }
    t.ok(Math.abs(fd((y, s) => ((y as { mean: number }).mean += s)) - g.mean) < 2e-3, 'mean');
    t.equal(g.userExtra !== undefined, extra);
  });
}

t.test('bad input is refused with what and where', async (t) => {
  const x = inputs();
  t.throws(() => biasedDotMse({ ...x, user: new Int32Array(0), item: new Int32Array(0) }, new Float32Array(0)), /empty batch/);
  t.throws(() => biasedDotMse(x, new Float32Array(2)), /2 targets for 4 examples/);
  t.throws(() => biasedDotPredict({ ...x, item: new Int32Array(1) }), /4 users but 1 items/);
  t.throws(() => biasedDotPredict({ ...x, dim: 4 }), /do not match dim 4/);
  t.throws(() => biasedDotPredict({ ...x, userBias: { rows: x.userBias.rows, values: new Float32Array(6) } }), /dim 1/);
  t.throws(() => biasedDotPredict({ ...x, userExtra: new Float32Array(2) }), /userExtra has 2 values/);
  t.throws(() => biasedDotPredict({ ...x, user: new Int32Array([0, 3, 0, 2]) }), EmbeddingError);
});
