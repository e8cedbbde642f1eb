// The zoo's quality bars (issue 4, "Done when"), each a test that fails if the model breaks.
import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { groupRows, implicitClicks, lowRankRatings, perUserFractionSplit, randomSplit } from '@actorflow/data';
import { BiasedMF, createModel } from '@actorflow/models';
import { evaluateModel, popularityRanking, trainLocal, type EvalData } from '../mod.ts';

t.test('MF on synthetic low-rank data reaches within 5 % of the noise-floor RMSE', async (t) => {
  // Enough ratings per parameter (150 per user, 200 per item) that estimation error is small: the
  // remaining gap to the floor is what the model gets wrong, not what the sample cannot tell.
  const data = lowRankRatings({ users: 400, items: 300, perUser: 150, rank: 3, noise: 0.5, seed: 11 });
  const { train, test } = randomSplit(data.ratings, { seed: 11 });
  let mean = 0;
  for (const r of train.rating) mean += r;
  mean /= train.length;
  const engine = await selectBackend({ backend: 'wasm' });
  const r = trainLocal({
    engine,
    model: new BiasedMF({ numUsers: 400, numItems: 300, dim: 3, initStd: 0.1, globalMean: mean }),
    train,
    test,
    batchSize: 512,
    epochs: 8,
    seed: 3,
    optimizer: { name: 'adam', lr: 0.01, l2: 1e-4 },
  });
  const rmse = r.metrics?.rmse ?? Number.NaN;
  const floor = data.truth.floorRmse;
  t.ok(rmse <= 1.05 * floor, `test RMSE ${rmse.toFixed(4)} vs noise floor ${floor.toFixed(4)} (ratio ${(rmse / floor).toFixed(4)} ≤ 1.05)`);
});

t.test('NeuMF beats the popularity baseline on NDCG@10 by a wide margin', async (t) => {
  // Implicit clicks from personal low-rank tastes plus Zipf popularity: popularity alone is a
  // strong baseline here, so beating it by 1.5× needs the personal part. (With 30 clicks per user
  // NeuMF's user embeddings overfit before they beat popularity; 60 give them enough to learn.)
  const clicks = implicitClicks({ users: 600, items: 300, perUser: 60, seed: 7 });
  const { train, test } = perUserFractionSplit(clicks.ratings, { fraction: 0.2, seed: 7 });
  const history = groupRows(train, 'user');
  const held: EvalData = { testRows: groupRows(test, 'user'), history, numItems: clicks.numItems, ks: [10, 20] };
  const pop = popularityRanking(held);
  const engine = await selectBackend({ backend: 'wasm' });
  const neumf = createModel('neumf', { numUsers: clicks.numUsers, numItems: clicks.numItems, dim: 16, mlpDim: 16, layers: '32,16', initStd: 0.01 });
  const r = trainLocal({ engine, model: neumf, train, history, batchSize: 256, epochs: 5, seed: 3, optimizer: { name: 'adam', lr: 0.002 } });
  const m = evaluateModel(engine, neumf, r.params, held);
  t.ok(m['ndcg@10'] > 1.5 * pop['ndcg@10'], `NeuMF NDCG@10 ${m['ndcg@10'].toFixed(4)} vs popularity ${pop['ndcg@10'].toFixed(4)}`);
});
