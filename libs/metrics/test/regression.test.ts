import t from 'tap';
import { MetricsError, RegressionAccumulator, mae, mse, rmse } from '../mod.ts';

t.test('by hand', async (t) => {
  const pred = [3, 4, 5];
  const truth = [2, 4, 7];
  t.equal(mse(pred, truth), 5 / 3);
  t.equal(rmse(pred, truth), Math.sqrt(5 / 3));
  t.equal(mae(pred, truth), 1);
  const acc = new RegressionAccumulator();
  acc.add(new Float32Array([3]), new Float32Array([2]));
  acc.add([4, 5], [4, 7]);
  t.equal(acc.count, 3);
  t.same(acc.result(), { mse: 5 / 3, rmse: Math.sqrt(5 / 3), mae: 1 });
  t.ok(Number.isNaN(new RegressionAccumulator().result().rmse));
  t.throws(() => rmse([1], [1, 2]), MetricsError);
});
