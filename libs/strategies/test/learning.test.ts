// The neural models learn (issue 4, "Done when"), trained by the same single-process trainer and
// scored by the same evaluation as the actors use: item-based AutoRec beats the global mean,
// Mult-VAE and Mult-DAE beat popularity on NDCG@10 and Recall@20, the MNIST CNN reaches ≥ 97 %.
// Learning runs take minutes on the pure-JS backends; every run is seeded, so the numbers repeat.
import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { exampleSet, groupRows, implicitClicks, loadBundledDigits, perUserFractionSplit, randomSplit, syntheticRatings } from '@actorflow/data';
import { createModel } from '@actorflow/models';
import { evaluateModel, popularityRanking, trainLocal, type EvalData } from '../mod.ts';

t.setTimeout(1_500_000);

t.test('item-based AutoRec beats the global mean on synthetic:small', async (t) => {
  const data = syntheticRatings('small', 1);
  const { train, test } = randomSplit(data.ratings, { seed: 1 });
  let mean = 0;
  for (const r of train.rating) mean += r;
  mean /= train.length;
  let se = 0;
  for (const r of test.rating) se += (r - mean) ** 2;
  const baseline = Math.sqrt(se / test.length);
  const engine = await selectBackend({ backend: 'wasm' });
  const model = createModel('autorec', { numUsers: data.numUsers, numItems: data.numItems, hidden: 100, l2: 1, globalMean: mean });
  const held: EvalData = { ratings: test, itemHistory: groupRows(train, 'item'), numItems: data.numItems };
  const r = trainLocal({ engine, model, train: exampleSet('item-rows', { ratings: train }), test: held, batchSize: 32, epochs: 10, seed: 3, optimizer: { name: 'adam', lr: 0.003 } });
  const rmse = r.metrics?.rmse ?? Number.NaN;
  t.ok(rmse < 0.9 * baseline, `AutoRec test RMSE ${rmse.toFixed(4)} < 0.9 × global mean ${baseline.toFixed(4)} (noise floor ${data.truth.floorRmse.toFixed(4)})`);
});

t.test('Mult-VAE and Mult-DAE beat popularity on implicit clicks', async (t) => {
  const clicks = implicitClicks({ users: 1500, items: 200, perUser: 20, rank: 4, seed: 7 });
  const { train, test } = perUserFractionSplit(clicks.ratings, { fraction: 0.2, seed: 7 });
  const held: EvalData = { testRows: groupRows(test, 'user'), history: groupRows(train, 'user'), numItems: clicks.numItems, ks: [10, 20] };
  const pop = popularityRanking(held);
  const engine = await selectBackend({ backend: 'wasm' });
  // The DAE overfits this small set after a few epochs; the VAE's KL term keeps it going longer.
  for (const [name, epochs] of [
    ['multvae', 15],
    ['multdae', 3],
  ] as const) {
    const model = createModel(name, { numItems: clicks.numItems, hidden: '200', latent: 50, ...(name === 'multvae' ? { totalAnnealSteps: 2000 } : {}) });
    const r = trainLocal({ engine, model, train: exampleSet('user-rows', { ratings: train }), batchSize: 100, epochs, seed: 5, optimizer: { name: 'adam', lr: 0.003 } });
    const m = evaluateModel(engine, model, r.params, held);
    t.ok(m['ndcg@10'] > 1.3 * pop['ndcg@10'], `${name} NDCG@10 ${m['ndcg@10'].toFixed(4)} > 1.3 × popularity ${pop['ndcg@10'].toFixed(4)}`);
    t.ok(m['recall@20'] > 1.1 * pop['recall@20'], `${name} Recall@20 ${m['recall@20'].toFixed(4)} > 1.1 × popularity ${pop['recall@20'].toFixed(4)}`);
  }
});

t.test('the MNIST CNN reaches ≥ 97 % test accuracy on the bundled digits', async (t) => {
  // 8k training digits: accuracy wobbles ±0.5 % from epoch to epoch; 7 epochs was ≥ 97.5 % for both
  // seeds tried (97.50 % here, 97.60 % with data and training seed 42), 5 epochs only 96.3–97.2 %.
  const { train, test } = loadBundledDigits({ seed: 0 });
  const engine = await selectBackend(); // native tensorflow when built (same result, faster), else wasm
  const model = createModel('mnist-cnn', {});
  const r = trainLocal({ engine, model, train: { kind: 'images', images: train }, batchSize: 32, epochs: 7, seed: 1, optimizer: { name: 'adam', lr: 0.001 } });
  const { accuracy } = evaluateModel(engine, model, r.params, { images: { pixels: test.pixels, label: test.labels }, numItems: 0 });
  t.ok(accuracy >= 0.97, `test accuracy ${(accuracy * 100).toFixed(2)} % on ${test.n} digits (${train.n} trained) ≥ 97 %`);
});
