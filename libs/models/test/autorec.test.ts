import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import type { InteractionsBatch } from '@actorflow/data';
import { AutoRec, ModelError, createModel, listModels, type GatheredParams, type StepResult, type TrainableModel } from '../mod.ts';
import { checkGradients, fill } from './gradcheck.ts';

// Item-based: rows are items (ids 0…2), columns users (0…3).
const batch: InteractionsBatch = {
  user: new Int32Array([0, 2]),
  offsets: new Int32Array([0, 3, 5]),
  items: new Int32Array([0, 1, 3, 1, 2]),
  values: new Float32Array([4, 2, 5, 3, 1]),
};

function gathered(model: TrainableModel<unknown>, rows: Record<string, Int32Array>, seed = 1): GatheredParams {
  const tables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
  for (const s of model.tableSpecs()) {
    const r = rows[s.name];
    if (r !== undefined) tables[s.name] = { rows: r, values: fill(r.length * s.dim, seed + s.name.length) };
  }
  const dense: Record<string, Float32Array> = {};
  for (const s of model.denseSpecs()) dense[s.name] = fill(s.size, seed + s.name.length + 7);
  return { tables, dense };
}

const base = { numUsers: 4, numItems: 3, by: 'item' as const, hidden: [3], hiddenActivation: 'sigmoid' as const, outputActivation: 'identity' as const, l2: 0.1, denoise: 0, globalMean: 3 };

for (const backend of ['cpu', 'wasm']) {
  t.test(`gradients match finite differences (${backend})`, async (t) => {
    const { tf } = await selectBackend({ backend });
    const variants = [
      { ...base },
      { ...base, hidden: [3, 2], hiddenActivation: 'tanh' as const, outputActivation: 'sigmoid' as const },
      { ...base, by: 'user' as const, numUsers: 3, numItems: 4, hidden: [4, 3, 2], hiddenActivation: 'elu' as const, denoise: 0.4 },
    ];
    for (const o of variants) {
      const model = new AutoRec(o);
      const p = gathered(model, model.rowsFor(batch));
      const ctx = { seed: 5, epoch: 1, step: 0 };
      const res = model.computeGradients(tf, batch, p, ctx);
      t.equal(res.count, 2);
      for (const g of Object.values(res.sparse))
        t.ok(
          g.rows.every((r, i) => i === 0 || r > g.rows[i - 1]),
          'rows sorted and unique',
        );
      checkGradients(t, p, res, (q) => model.computeGradients(tf, batch, q, ctx).loss, { tol: 3e-3 });
    }
  });
}

t.test('loss is squared error on observed entries; predict reconstructs them', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const model = new AutoRec({ ...base, l2: 0 });
  const p = gathered(model, model.rowsFor(batch));
  const pred = model.predict(tf, batch, p);
  t.equal(pred.length, 5);
  let sq = 0;
  for (let e = 0; e < 5; e++) sq += (pred[e] - batch.values[e]) ** 2;
  t.ok(Math.abs(model.computeGradients(tf, batch, p).loss - sq / 2) < 1e-5, 'per-row sums / rows');
  // predictPairs: other columns of the same rows, from the rows' training vectors.
  const query: InteractionsBatch = { user: batch.user, offsets: new Int32Array([0, 1, 2]), items: new Int32Array([2, 0]), values: new Float32Array(2) };
  const q = model.rowsForPairs(batch, query);
  t.same([...q['dec.w']], [0, 2]);
  const pp = gathered(model, { ...q, 'enc.w': model.rowsFor(batch)['enc.w'] });
  t.equal(model.predictPairs(tf, batch, query, pp).length, 2);
  // A row with no training ratings predicts the global mean.
  const empty: InteractionsBatch = { user: new Int32Array([1]), offsets: new Int32Array([0, 0]), items: new Int32Array(0), values: new Float32Array(0) };
  const emptyQ: InteractionsBatch = { user: new Int32Array([1]), offsets: new Int32Array([0, 1]), items: new Int32Array([3]), values: new Float32Array(1) };
  const pe = gathered(model, model.rowsForPairs(empty, emptyQ));
  t.same([...model.predictPairs(tf, empty, emptyQ, pe)], [3]);
  t.throws(() => model.predictPairs(tf, batch, emptyQ, pe), /same rows/);
});

t.test('denoising noise depends on (seed, epoch, row) only: one batch of 2 = two batches of 1', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const model = new AutoRec({ ...base, denoise: 0.5, hidden: [3, 2] });
  const p = gathered(model, model.rowsFor(batch));
  const ctx = { seed: 9, epoch: 2, step: 0 };
  const both = model.computeGradients(tf, batch, p, ctx);
  t.same(model.computeGradients(tf, batch, p, ctx), both, 'same context, same step');
  t.not(model.computeGradients(tf, batch, p, { ...ctx, epoch: 3 }).loss, both.loss, 'another epoch, other noise');
  const split = (k: number): InteractionsBatch => {
    const s = batch.offsets[k];
    const e = batch.offsets[k + 1];
    return { user: batch.user.subarray(k, k + 1), offsets: new Int32Array([0, e - s]), items: batch.items.subarray(s, e), values: batch.values.subarray(s, e) };
  };
  const parts: StepResult[] = [0, 1].map((k) => model.computeGradients(tf, split(k), p, ctx));
  // The mean of the halves' gradients (count-weighted, as the reducers do) equals the whole's.
  const denseL2Loss = 0; // dense L2 is charged once per batch: equal in every half and in the whole
  t.ok(Math.abs((parts[0].loss + parts[1].loss) / 2 - both.loss - denseL2Loss) < 1e-5, 'loss');
  for (const [name, g] of Object.entries(both.dense)) {
    const avg = g.map((_, i) => (parts[0].dense[name][i] + parts[1].dense[name][i]) / 2);
    t.ok(
      avg.every((v, i) => Math.abs(v - g[i]) < 1e-6),
      `dense ${name}`,
    );
  }
  for (const [name, g] of Object.entries(both.sparse)) {
    const dim = g.values.length / g.rows.length;
    const sum = new Map<number, number[]>();
    for (const part of parts) {
      const pg = part.sparse[name];
      pg.rows.forEach((r, i) => {
        const acc = sum.get(r) ?? new Array<number>(dim).fill(0);
        for (let d = 0; d < dim; d++) acc[d] += pg.values[i * dim + d] / 2;
        sum.set(r, acc);
      });
    }
    t.same(
      [...sum.keys()].sort((a, b) => a - b),
      [...g.rows],
      `${name} rows`,
    );
    t.ok(
      [...g.rows].every((r, i) => (sum.get(r) ?? []).every((v, d) => Math.abs(v - g.values[i * dim + d]) < 1e-6)),
      `sparse ${name}`,
    );
  }
});

t.test('user-based scoreItems; registry and bad input', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  t.ok(listModels().some((m) => m.name === 'autorec'));
  const m = createModel('autorec', { numUsers: 3, numItems: 4, by: 'user', hidden: 3, stacked: '2' }) as AutoRec;
  t.equal(m.rowsAre, 'users');
  t.equal(m.input, 'interactions');
  t.equal(m.task, 'rating');
  t.same(
    m.denseSpecs().map((s) => s.name),
    ['enc.b', 'h1.w', 'h1.b'],
  );
  const rows = m.rowsForScoring(batch);
  t.equal(rows['dec.w'].length, 4);
  const scores = m.scoreItems(tf, batch, gathered(m, rows));
  t.equal(scores.length, 2 * 4);
  t.equal(createModel('autorec', { numUsers: 3, numItems: 4 }).rowsAre, 'items', 'item-based by default');
  const itemBased = createModel('autorec', { numUsers: 4, numItems: 3 }) as AutoRec;
  t.throws(() => itemBased.scoreItems(tf, batch, gathered(itemBased, itemBased.rowsForScoring(batch))), /by: 'user'/);
  t.throws(() => createModel('autorec', { numUsers: 3, numItems: 4, stacked: '250,x' }), /bad layer size 'x'/);
  t.throws(() => createModel('autorec', { numUsers: 3, numItems: 4, hiddenActivation: 'swish' }), /hiddenActivation' must be one of/);
  t.throws(() => createModel('autorec', { numUsers: 3, numItems: 4, denoise: 1 }), /denoise must be in/);
  t.throws(() => createModel('autorec', { numUsers: 0, numItems: 4 }), ModelError);
  t.throws(() => createModel('autorec', { numUsers: 3, numItems: 4, hidden: 0 }), /integer >= 1/);
  const model = new AutoRec(base);
  const p = gathered(model, model.rowsFor(batch));
  t.throws(() => model.computeGradients(tf, { user: new Int32Array(0), offsets: new Int32Array([0]), items: new Int32Array(0), values: new Float32Array(0) }, p), /empty batch/);
  t.throws(() => model.computeGradients(tf, { ...batch, items: new Int32Array([0, 1, 9, 1, 2]) }, p), /column 9 is out of range/);
  t.throws(() => model.computeGradients(tf, { ...batch, offsets: new Int32Array([0, 3]) }, p), /offsets/);
  t.throws(() => model.computeGradients(tf, batch, { ...p, dense: {} }), /dense 'enc.b' is missing/);
  const { 'dec.w': _omit, ...rest } = p.tables;
  t.throws(() => model.computeGradients(tf, batch, { tables: rest, dense: p.dense }), /table 'dec.w' was not gathered/);
  t.throws(() => model.computeGradients(tf, batch, { ...p, tables: { ...p.tables, 'enc.w': { rows: new Int32Array([0]), values: new Float32Array(3) } } }), /row 1 was not gathered/);
});
