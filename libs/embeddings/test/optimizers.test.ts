import t from 'tap';
import { EmbeddingError, RowOptimizer, createTable } from '../mod.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, eps = 1e-6): boolean => a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]) <= eps);
const column = (values: number[]) => {
  const tbl = createTable('w', values.length, 1, { kind: 'zeros' }, 0);
  tbl.data.set(values);
  return tbl;
};

t.test('dense Adam = torch.optim.Adam(lr 0.1, weight_decay 0.5), two steps by hand', async (t) => {
  // Rows [1, 2, 3]; step 1 has a gradient for row 1 only (0.4), step 2 for row 2 only (−1).
  // Every row takes g = grad (or 0) + 0.5·w; m, v, and the bias corrections advance for all rows.
  // Step 1 (t = 1): each row moves by lr·sign(g) (m̂/√v̂ = ±1): [0.9, 1.9, 2.9]. Step 2 (t = 2), by hand:
  //   row 0: g = 0.45,  m = 0.9·0.05 + 0.1·0.45 = 0.09,  v = 0.999·2.5e-4 + 0.001·0.2025 = 4.52250e-4,
  //          w = 0.9 − (0.1/0.19)·0.09 / (√v/√0.001999 + 1e-8) = 0.800412…
  //   row 1: g = 0.95,  m = 0.221, v = 2.86054e-3 → 1.802765…;  row 2: g = −1 + 1.45 = 0.45, m = 0.18 → 2.814430…
  const tbl = column([1, 2, 3]);
  const opt = new RowOptimizer({ name: 'adam', lr: 0.1, l2: 0.5, dense: true });
  opt.applyRows(tbl, new Int32Array([1]), new Float32Array([0.4]));
  t.ok(close(tbl.data, [0.9, 1.9, 2.9]), `step 1: ${[...tbl.data]}`);
  t.ok(close(opt.state()['w'].m, [0.05, 0.14, 0.15]));
  t.ok(close(opt.state()['w'].v, [2.5e-4, 1.96e-3, 2.25e-3], 1e-9));
  opt.applyRows(tbl, new Int32Array([2]), new Float32Array([-1]));
  t.ok(close(tbl.data, [0.8004122317534286, 1.8027653510774087, 2.8144302831280634], 2e-6), `step 2: ${[...tbl.data]}`);
  t.ok(close(opt.state()['w'].m, [0.09, 0.221, 0.18]));
  t.same([...opt.state()['w'].steps], [2, 2, 2], 'every row counts every step');

  const lazy = column([1, 2, 3]);
  const lazyOpt = new RowOptimizer({ name: 'adam', lr: 0.1, l2: 0.5 });
  lazyOpt.applyRows(lazy, new Int32Array([1]), new Float32Array([0.4]));
  t.same(
    [...lazy.data].filter((_, r) => r !== 1),
    [1, 3],
    'lazy (the default) leaves untouched rows alone',
  );
  t.same([...lazyOpt.state()['w'].steps], [0, 1, 0]);

  t.throws(() => opt.applyRows(tbl, new Int32Array([1, 1]), new Float32Array(2)), /appears twice/);
  t.throws(() => opt.applyRows(tbl, new Int32Array([3]), new Float32Array(1)), /out of range/);
  t.throws(() => new RowOptimizer({ name: 'sgd', lr: 0.1, dense: true }), /dense: true is an Adam option/);
});

t.test('dense Adam is bit-reproducible (fixed row order)', async (t) => {
  const run = (): Float32Array => {
    const tbl = createTable('e', 20, 4, { kind: 'normal', std: 0.3 }, 5);
    const opt = new RowOptimizer({ name: 'adam', lr: 0.01, l2: 0.01, dense: true });
    for (let s = 0; s < 5; s++)
      opt.applyRows(
        tbl,
        new Int32Array([s, s + 7]),
        Float32Array.from({ length: 8 }, (_, k) => Math.sin(s + k)),
      );
    return tbl.data;
  };
  t.same(run(), run());
});

t.test('RMSprop: TF/Keras rule, with and without momentum, by hand', async (t) => {
  // v ← 0.9·v + 0.1·g²; w ← w − lr·g/√(v + 1e-7). g = 0.5 then −1, lr 0.01, w = 1:
  //   v = 0.025, w = 1 − 0.005/√0.0250001 = 0.968377…; v = 0.1225, w = 0.968377 + 0.01/√0.1225001 = 0.996949…
  const tbl = column([1]);
  const opt = new RowOptimizer({ name: 'rmsprop', lr: 0.01 });
  t.equal(opt.config.rho, 0.9);
  t.equal(opt.config.epsilon, 1e-7);
  opt.applyRows(tbl, new Int32Array([0]), new Float32Array([0.5]));
  t.ok(close(tbl.data, [0.9683772866436797]));
  opt.applyRows(tbl, new Int32Array([0]), new Float32Array([-1]));
  t.ok(close(tbl.data, [0.9969487035533079]));
  t.ok(close(opt.state()['w'].v, [0.1225]));
  // Momentum 0.5: m ← 0.5·m + Δ; w ← w − m.
  const mom = column([1]);
  const mopt = new RowOptimizer({ name: 'rmsprop', lr: 0.01, momentum: 0.5 });
  mopt.applyRows(mom, new Int32Array([0]), new Float32Array([0.5]));
  mopt.applyRows(mom, new Int32Array([0]), new Float32Array([-1]));
  t.ok(close(mom.data, [0.9811373468751476]));
  const dense = new Float32Array([1]);
  new RowOptimizer({ name: 'rmsprop', lr: 0.01 }).applyDense('b', dense, new Float32Array([0.5]));
  t.ok(close(dense, [0.9683772866436797]), 'dense tensors use the same rule');
});

t.test('defaults and validation', async (t) => {
  t.equal(new RowOptimizer({ name: 'rmsprop' }).config.lr, 0.001, 'Keras default learning rates');
  t.equal(new RowOptimizer({ name: 'adam' }).config.lr, 0.001);
  t.equal(new RowOptimizer({ name: 'sgd' }).config.lr, 0.01);
  t.equal(new RowOptimizer({ name: 'adam', momentum: undefined }).config.momentum, 0, 'explicit undefined keeps the default');
  t.equal(new RowOptimizer({ name: 'adam' }).config.dense, false, 'lazy by default');
  t.throws(() => new RowOptimizer({ name: 'rmsprop', rho: 1 }), /rho must be in \[0, 1\)/);
  t.throws(() => new RowOptimizer({ name: 'sgd', l2: -1 }), /l2 must be >= 0/);
  t.throws(() => new RowOptimizer({ name: 'nope' as 'sgd' }), EmbeddingError);
});
