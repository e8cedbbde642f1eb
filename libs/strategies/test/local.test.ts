import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { lowRankRatings, randomSplit } from '@actorflow/data';
import { BiasedMF } from '@actorflow/models';
import { trainLocal } from '../mod.ts';

const data = lowRankRatings({ users: 300, items: 200, perUser: 60, rank: 3, noise: 0.3, seed: 11 });
const { train, test } = randomSplit(data.ratings, { seed: 11 });
let mean = 0;
for (const r of train.rating) mean += r;
mean /= train.length;

for (const backend of ['cpu', 'wasm']) {
  t.test(`MF on low-rank data approaches the noise floor (${backend})`, async (t) => {
    const engine = await selectBackend({ backend });
    const model = new BiasedMF({ numUsers: 300, numItems: 200, dim: 8, initStd: 0.1, globalMean: mean });
    const losses: number[] = [];
    const run = () =>
      trainLocal({
        engine,
        model,
        train,
        test,
        batchSize: 256,
        epochs: 12,
        seed: 3,
        // L2 acts on gradients of the *mean* batch loss, so it is small (see embeddings' README).
        optimizer: { name: 'adam', lr: 0.01, l2: 1e-4 },
        onStep: (r) => losses.push(r.loss),
      });
    const r = run();
    t.ok(r.metrics !== undefined);
    const rmse = r.metrics?.rmse ?? Number.NaN;
    t.ok(rmse < data.truth.floorRmse * 1.25, `test RMSE ${rmse.toFixed(4)} vs floor ${data.truth.floorRmse.toFixed(4)}`);
    t.ok(losses[losses.length - 1] < losses[0] / 3, 'training loss falls');
    const again = run();
    t.same(again.params.tables.user.data, r.params.tables.user.data, 'two runs are bit-identical');
  });
}
