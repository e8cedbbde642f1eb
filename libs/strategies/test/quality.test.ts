// The zoo's quality bars (issue 4, "Done when"), each a test that fails if the model breaks.
import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { lowRankRatings, randomSplit } from '@actorflow/data';
import { BiasedMF } from '@actorflow/models';
import { trainLocal } from '../mod.ts';

t.test('MF on synthetic low-rank data reaches within 5 % of the noise-floor RMSE', async (t) => {
  // Enough ratings per parameter (150 per user, 200 per item) that estimation error is small: the
  // remaining gap to the floor is what the model gets wrong, not what the sample cannot tell.
  const data = lowRankRatings({ users: 400, items: 300, perUser: 150, rank: 3, noise: 0.5, seed: 11 });
  const { train, test } = randomSplit(data.ratings, { seed: 11 });
  let mean = 0;
  for (const r of train.rating) mean += r;
  mean /= train.length;
  const engine = await selectBackend({ backend: 'wasm' });
  const r = trainLocal({ engine, model: new BiasedMF({ numUsers: 400, numItems: 300, dim: 3, initStd: 0.1, globalMean: mean }), train, test, batchSize: 512, epochs: 8, seed: 3, optimizer: { name: 'adam', lr: 0.01, l2: 1e-4 } });
  const rmse = r.metrics?.rmse ?? Number.NaN;
  const floor = data.truth.floorRmse;
  t.ok(rmse <= 1.05 * floor, `test RMSE ${rmse.toFixed(4)} vs noise floor ${floor.toFixed(4)} (ratio ${(rmse / floor).toFixed(4)} ≤ 1.05)`);
});
