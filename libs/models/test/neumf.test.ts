import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { NeuMf, createModel, type GatheredParams, type RatingsWithHistory } from '../mod.ts';
import { checkGradients, values } from './fd-check.ts';

const numItems = 6;
// User 0 interacted with {0, 1, 3}, user 2 with {1, 5}.
const batch: RatingsWithHistory = {
  user: new Int32Array([0, 2, 0]),
  item: new Int32Array([1, 1, 0]),
  rating: new Float32Array([1, 1, 1]),
  history: { user: new Int32Array([0, 2]), offsets: new Int32Array([0, 3, 5]), items: new Int32Array([0, 1, 3, 1, 5]), values: new Float32Array(5).fill(1) },
};
const model = new NeuMf({ numUsers: 3, numItems, dim: 2, mlpDim: 2, layers: [4, 3], negatives: 2, initStd: 0.01 });
const ctx = { seed: 3, epoch: 1, step: 0 };

function params(): GatheredParams {
  const r = model.rowsFor(batch);
  const tables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
  for (const [i, s] of model.tableSpecs().entries()) tables[s.name] = { rows: r[s.name], values: values(r[s.name].length * s.dim, i + 1, 0.8) };
  const dense: Record<string, Float32Array> = {};
  model.denseSpecs().forEach((s, i) => {
    dense[s.name] = s.name.endsWith('mlp0.b') || s.name.endsWith('mlp1.b') ? new Float32Array(s.size).fill(0.3) : values(s.size, 20 + i, 0.8);
  });
  return { tables, dense };
}

t.test('neumf: negatives are deterministic per example, avoid the history, and differ by epoch', async (t) => {
  const a = model.pairs(batch, ctx);
  t.same(a, model.pairs(batch, ctx), 'same context → same negatives');
  t.same([...a.label], [1, 0, 0, 1, 0, 0, 1, 0, 0]);
  t.same([...a.user], [0, 0, 0, 2, 2, 2, 0, 0, 0]);
  for (let k = 0; k < a.item.length; k++) {
    if (a.label[k] === 1) continue;
    const excluded = a.user[k] === 0 ? [0, 1, 3] : [1, 5];
    t.notOk(excluded.includes(a.item[k]), `negative ${a.item[k]} of user ${a.user[k]} is not in the history`);
  }
  // Split the batch as two ranks would: each example's negatives are unchanged.
  const first = model.pairs({ ...batch, user: batch.user.subarray(0, 1), item: batch.item.subarray(0, 1), rating: batch.rating.subarray(0, 1) }, ctx);
  t.same([...first.item], [...a.item.subarray(0, 3)], 'independent of the batch split');
  const epochs = new Set(Array.from({ length: 8 }, (_, e) => model.pairs(batch, { ...ctx, epoch: e }).item.join(',')));
  t.ok(epochs.size > 1, 'other epochs draw other negatives');
  const { history: _h, ...bare } = batch;
  const noHist = model.pairs(bare, ctx);
  t.ok(
    [...noHist.item].every((j, k) => noHist.label[k] === 1 || j !== noHist.item[k - (k % 3)]),
    'without history only the positive is excluded',
  );
  const full: RatingsWithHistory = { ...batch, history: { ...batch.history!, offsets: new Int32Array([0, 6, 6]), items: new Int32Array([0, 1, 2, 3, 4, 5]) } };
  t.same([...model.pairs(full, ctx).label.subarray(0, 1)], [1], 'a user with every item gets no negatives');
  t.equal(model.pairs(full, ctx).item.length, 1 + 1 + 3, 'user 2 (empty history row here) still gets them');
  const rows = model.rowsFor(batch, ctx);
  t.same(rows.gmfItem, Int32Array.from(new Set(a.item)).sort(), 'with a context, rowsFor gathers the sampled items only');
  t.equal(model.rowsFor(batch).gmfItem.length, numItems, 'without one, every item');
});

t.test('neumf: gradients match finite differences; loss is BCE of predict; scoreItems = predict', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const p = params();
  const res = model.computeGradients(tf, batch, p, ctx);
  t.equal(res.count, 3, 'count is the positives');
  const pr = model.pairs(batch, ctx);
  const logits = model.predict(tf, { user: pr.user, item: pr.item, rating: pr.label }, p);
  const bce = logits.reduce((s, z, k) => s + Math.max(z, 0) - z * pr.label[k] + Math.log1p(Math.exp(-Math.abs(z))), 0) / logits.length;
  t.ok(Math.abs(bce - res.loss) < 1e-5, `loss ${res.loss} = mean BCE over positives and negatives ${bce}`);
  t.same(res.sparse.gmfItem.rows, Int32Array.from(new Set(pr.item)).sort(), 'item gradients only for positives and negatives');
  checkGradients(t, tf, model, batch, p, { ctx });
  const scores = model.scoreItems(tf, batch.history!, p);
  t.equal(scores.length, 2 * numItems);
  const direct = model.predict(tf, { user: new Int32Array(numItems).fill(2), item: Int32Array.from({ length: numItems }, (_, i) => i), rating: new Float32Array(numItems) }, p);
  t.ok(
    direct.every((z, i) => Math.abs(z - scores[numItems + i]) < 1e-5),
    'row k of scoreItems is user k against every item',
  );
  t.same(model.rowsForScoring(batch.history!), {
    gmfUser: new Int32Array([0, 2]),
    mlpUser: new Int32Array([0, 2]),
    gmfItem: Int32Array.from({ length: numItems }, (_, i) => i),
    mlpItem: Int32Array.from({ length: numItems }, (_, i) => i),
  });
  t.equal(model.scoreItems(tf, { user: new Int32Array(0), offsets: new Int32Array([0]), items: new Int32Array(0), values: new Float32Array(0) }, p).length, 0);
  t.equal(model.predict(tf, { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0) }, p).length, 0);
  const dflt = model.computeGradients(tf, batch, p);
  t.same(dflt.loss, model.computeGradients(tf, batch, p, { seed: 0, epoch: 0, step: 0 }).loss, 'no context = seed 0, epoch 0');
});

t.test('neumf: registry and errors', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const m = createModel('neumf', { numUsers: 2, numItems: 3 });
  t.equal(m.task, 'ranking');
  t.equal(m.needsHistory, true);
  t.same(
    m.denseSpecs().map((s) => s.size),
    [64 * 64, 64, 64 * 32, 32, 32 * 16, 16, 16 + 16, 1],
    'defaults: mlpDim 32 (input 64), layers 64,32,16, GMF dim 16',
  );
  t.throws(() => new NeuMf({ numUsers: 0, numItems: 1, dim: 1, mlpDim: 1, layers: [1], negatives: 1, initStd: 0.01 }), /numUsers/);
  t.throws(() => new NeuMf({ numUsers: 1, numItems: 1, dim: 1, mlpDim: 0, layers: [1], negatives: 1, initStd: 0.01 }), /mlpDim/);
  t.throws(() => new NeuMf({ numUsers: 1, numItems: 1, dim: 1, mlpDim: 1, layers: [1], negatives: -1, initStd: 0.01 }), /negatives/);
  t.throws(() => new NeuMf({ numUsers: 1, numItems: 1, dim: 1, mlpDim: 1, layers: [], negatives: 1, initStd: 0.01 }), /layer/);
  t.throws(() => model.computeGradients(tf, { ...batch, user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0) }, params()), /empty batch/);
  const zero = new NeuMf({ numUsers: 3, numItems, dim: 2, mlpDim: 2, layers: [4, 3], negatives: 0, initStd: 0.01 });
  t.equal(zero.pairs(batch, ctx).item.length, 3, 'negatives 0: positives only');
});
