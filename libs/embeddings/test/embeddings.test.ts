import t from 'tap';
import { join } from 'node:path';
import { EmbeddingError, RowOptimizer, addSparse, createTable, dedupeSparseGradient, gatherRows, initRow, loadParams, saveParams, scatterRows, sumSparseInOrder, type SparseGradient } from '../mod.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, eps = 1e-6): boolean => a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]) <= eps);

t.test('tables: deterministic per-row init independent of table size; gather/scatter', async (t) => {
  const a = createTable('user', 10, 4, { kind: 'normal', std: 0.1 }, 7);
  const b = createTable('user', 20, 4, { kind: 'normal', std: 0.1 }, 7);
  t.same(a.data, b.data.subarray(0, 40), 'row r depends only on (seed, table, r)');
  const row = new Float32Array(4);
  initRow({ kind: 'normal', std: 0.1 }, 7, 'user', 3, row);
  t.same(row, a.data.subarray(12, 16));
  t.not(createTable('item', 10, 4, { kind: 'normal', std: 0.1 }, 7).data[0], a.data[0], 'tables get independent streams');
  t.ok(createTable('z', 3, 2, { kind: 'zeros' }, 1).data.every((x) => x === 0));
  t.ok(createTable('c', 3, 2, { kind: 'constant', value: 2 }, 1).data.every((x) => x === 2));
  t.ok(createTable('u', 50, 2, { kind: 'uniform', scale: 0.5 }, 1).data.every((x) => Math.abs(x) <= 0.5));
  const g = gatherRows(a, new Int32Array([3, 3, 0]));
  t.same(g.subarray(0, 4), a.data.subarray(12, 16));
  t.same(g.subarray(4, 8), a.data.subarray(12, 16));
  scatterRows(a, new Int32Array([1]), new Float32Array([1, 2, 3, 4]));
  t.same([...a.data.subarray(4, 8)], [1, 2, 3, 4]);
  t.throws(() => gatherRows(a, new Int32Array([10])), /row 10 is out of range 0…9/);
  t.throws(() => scatterRows(a, new Int32Array([1]), new Float32Array(3)), EmbeddingError);
  t.throws(() => createTable('bad', 2, 0, { kind: 'zeros' }, 1), /dim >= 1/);
});

t.test('dedupe sums repeated rows and sorts; addSparse merges in order', async (t) => {
  const d = dedupeSparseGradient(new Int32Array([5, 2, 5]), new Float32Array([1, 1, 2, 2, 3, 3]), 2);
  t.same([...d.rows], [2, 5]);
  t.same([...d.values], [2, 2, 4, 4]);
  t.throws(() => dedupeSparseGradient(new Int32Array([1]), new Float32Array(3), 2), EmbeddingError);
  const s = addSparse(d, { rows: new Int32Array([1, 5]), values: new Float32Array([1, 1, 1, 1]) }, 2, 2);
  t.same([...s.rows], [1, 2, 5]);
  t.same([...s.values], [2, 2, 2, 2, 6, 6]);
});

t.test('sumSparseInOrder: the bits of folding addSparse over the parts, then scaling', async (t) => {
  let seed = 12345;
  const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const dim = 3;
  const part = (): { rows: Int32Array; values: Float32Array } => {
    const rows = Int32Array.from([...new Set(Array.from({ length: 20 }, () => Math.floor((rnd() + 1) * 15)))].sort((a, b) => a - b));
    // Large and tiny magnitudes and signed zeros, so rounding order would show.
    const values = Float32Array.from({ length: rows.length * dim }, (_, i) => (i % 7 === 0 ? -0 : rnd() * 10 ** Math.floor(rnd() * 8)));
    return { rows, values };
  };
  for (const k of [1, 2, 3, 5]) {
    const parts = Array.from({ length: k }, part);
    parts.push({ rows: new Int32Array(0), values: new Float32Array(0) }); // a rank that sat the step out
    const inv = 1 / 7;
    let folded: SparseGradient = { rows: new Int32Array(0), values: new Float32Array(0) };
    for (const p of parts) folded = addSparse(folded, p, dim);
    const want = Float32Array.from(folded.values, (x) => x * inv);
    const got = sumSparseInOrder(parts, dim, inv);
    t.same([...got.rows], [...folded.rows], `${k} parts: the union of rows, sorted`);
    t.same(new Uint8Array(got.values.buffer, got.values.byteOffset, got.values.byteLength), new Uint8Array(want.buffer), `${k} parts: the same bits`);
  }
  t.same(sumSparseInOrder([], 2).rows.length, 0);
});

t.test('optimizers against hand-computed steps; only touched rows move', async (t) => {
  const rows = new Int32Array([1]);
  const grad = new Float32Array([0.5, -1]);
  const fresh = (): ReturnType<typeof createTable> => createTable('w', 3, 2, { kind: 'constant', value: 1 }, 0);

  const sgd = fresh();
  new RowOptimizer({ name: 'sgd', lr: 0.1 }).applyRows(sgd, rows, grad);
  t.ok(close(sgd.data, [1, 1, 0.95, 1.1, 1, 1]));

  const l2 = fresh();
  new RowOptimizer({ name: 'sgd', lr: 0.1, l2: 0.5 }).applyRows(l2, rows, grad);
  t.ok(close(l2.data.subarray(2, 4), [1 - 0.1 * (0.5 + 0.5), 1 - 0.1 * (-1 + 0.5)]), 'L2 adds l2·w to the gradient of touched rows');
  t.same([...l2.data.subarray(0, 2)], [1, 1], 'untouched rows are not decayed');

  const mom = fresh();
  const m = new RowOptimizer({ name: 'sgd', lr: 0.1, momentum: 0.9 });
  m.applyRows(mom, rows, grad);
  m.applyRows(mom, rows, grad);
  t.ok(close(mom.data.subarray(2, 4), [1 - 0.1 * 0.5 - 0.1 * (0.9 * 0.5 + 0.5), 1 + 0.1 + 0.1 * (0.9 + 1)]));

  const ada = fresh();
  new RowOptimizer({ name: 'adagrad', lr: 0.1 }).applyRows(ada, rows, grad);
  t.ok(close(ada.data.subarray(2, 4), [1 - (0.1 * 0.5) / Math.sqrt(0.1 + 0.25), 1 + 0.1 / Math.sqrt(1.1)]));

  const adam = fresh();
  const opt = new RowOptimizer({ name: 'adam', lr: 0.01 });
  opt.applyRows(adam, rows, grad);
  // First Adam step moves each coordinate by ~lr·sign(grad).
  t.ok(close(adam.data.subarray(2, 4), [0.99, 1.01], 1e-5));
  opt.applyRows(adam, new Int32Array([2]), grad);
  t.equal(opt.state()['w'].steps[2], 1, 'lazy Adam counts steps per row');
  t.equal(opt.state()['w'].steps[1], 1);
  t.same([...adam.data.subarray(0, 2)], [1, 1], 'row 0 never touched: value unchanged');
  t.same([...opt.state()['w'].m.subarray(0, 2)], [0, 0], 'and its moments too');

  const dense = new Float32Array([1, 2]);
  new RowOptimizer({ name: 'sgd', lr: 1 }).applyDense('b', dense, new Float32Array([1, 1]), 0.5);
  t.same([...dense], [0.5, 1.5], 'dense updates with an lr scale');
  t.throws(() => new RowOptimizer({ name: 'sgd', lr: 0 }), /learning rate/);
  t.throws(() => new RowOptimizer({ name: 'nope' as 'sgd', lr: 1 }), /unknown optimizer/);
  t.throws(() => new RowOptimizer({ name: 'sgd', lr: 1 }).applyRows(fresh(), new Int32Array([9]), grad), /out of range/);
  t.throws(() => new RowOptimizer({ name: 'sgd', lr: 1 }).applyDense('b', dense, new Float32Array(3)), EmbeddingError);
});

t.test('save and load tables, dense params and optimizer state', async (t) => {
  const dir = t.testdir({ 'junk.bin': 'nope' });
  const table = createTable('item', 4, 3, { kind: 'normal', std: 1 }, 2);
  const opt = new RowOptimizer({ name: 'adam', lr: 0.01 });
  opt.applyRows(table, new Int32Array([2]), new Float32Array([1, 2, 3]));
  const path = join(dir, 'p.bin');
  saveParams(path, { tables: [table], dense: { mean: new Float32Array([3.5]) }, optimizer: opt, meta: { step: 7 } });
  const back = loadParams(path);
  t.same(back.tables[0].data, table.data);
  t.same(back.dense.mean, new Float32Array([3.5]));
  t.equal(back.meta?.step, 7);
  t.same(back.optimizer?.state()['item'].steps, opt.state()['item'].steps);
  t.throws(() => loadParams(join(dir, 'junk.bin')), EmbeddingError);
});
