import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { createModel } from '@actorflow/models';
import { clipToRange, evaluateModel, initParams } from '../mod.ts';

t.test('clipToRange: a clipped copy; no range, the predictions themselves', async (t) => {
  const p = Float32Array.of(0.2, 3, 5.49, Number.NEGATIVE_INFINITY);
  t.same(Array.from(clipToRange(p, [1, 5])), [1, 3, 5, 1]);
  t.same(Array.from(p), Array.from(Float32Array.of(0.2, 3, 5.49, Number.NEGATIVE_INFINITY)), 'the input is not changed');
  t.equal(clipToRange(p, undefined), p);
});

t.test("evaluateModel clips rating predictions to the data's range", async (t) => {
  const engine = await selectBackend({ backend: 'cpu' });
  // An MF whose global mean is far above the scale: every prediction is ≈ 9 on a 1–5 scale.
  const model = createModel('mf', { numUsers: 3, numItems: 3, globalMean: 9, dim: 2, initStd: 0.001 });
  const params = initParams(model, 1);
  const ratings = { user: Int32Array.of(0, 1, 2), item: Int32Array.of(0, 1, 2), rating: Float32Array.of(5, 4, 3), length: 3 };
  const history = { user: Int32Array.of(0, 1, 2), offsets: Int32Array.of(0, 1, 2, 3), items: Int32Array.of(0, 1, 2), values: Float32Array.of(5, 4, 3) };
  const raw = evaluateModel(engine, model, params, { ratings, history, numItems: 3 });
  const clipped = evaluateModel(engine, model, params, { ratings, history, numItems: 3, ratingRange: [1, 5] });
  t.ok(Math.abs(raw.mae - 5) < 0.01, `unclipped: MAE ≈ 5 (${raw.mae})`);
  t.ok(Math.abs(clipped.mae - 1) < 1e-6, `clipped to 5: MAE = (0 + 1 + 2) / 3 = 1 (${clipped.mae})`);
  t.ok(Math.abs(clipped.rmse - Math.sqrt(5 / 3)) < 1e-6);
});
