// AutoRec learns: item-based AutoRec on the synthetic low-rank ratings beats the global mean.
// Knobs for tuning runs: AUTOREC_{SIZE,BACKEND,HIDDEN,L2,BATCH,EPOCHS,LR,VERBOSE}.
import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { randomSplit, syntheticRatings } from '@actorflow/data';
import { AutoRec } from '@actorflow/models';
import { gather } from '../src/params.ts';
import { groupRows, takeRows, trainLoop } from './loop.ts';

// Learning runs take minutes on the pure-JS backends with other work on the machine.
t.setTimeout(900_000);

const size = (process.env.AUTOREC_SIZE ?? 'small') as 'tiny' | 'small';
const data = syntheticRatings(size, 1);
const { train, test } = randomSplit(data.ratings, { seed: 1 });
let mean = 0;
for (const r of train.rating) mean += r;
mean /= train.length;
const trainRows = groupRows(train, 'item', data.numItems);
const testRows = groupRows(test, 'item', data.numItems);

function rmseOf(pred: Float32Array, truth: Float32Array): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += (pred[i] - truth[i]) ** 2;
  return Math.sqrt(s / pred.length);
}

const backend = process.env.AUTOREC_BACKEND ?? 'cpu';
t.test(`item-based AutoRec beats the global mean on synthetic:${size} (${backend})`, async (t) => {
  const engine = await selectBackend({ backend });
  const hidden = Number(process.env.AUTOREC_HIDDEN ?? 100);
  const model = new AutoRec({ numUsers: data.numUsers, numItems: data.numItems, by: 'item', hidden: [hidden], hiddenActivation: 'sigmoid', outputActivation: 'identity', l2: Number(process.env.AUTOREC_L2 ?? 1), denoise: 0, globalMean: mean });
  const evaluate = (params: Parameters<typeof gather>[0]): number => {
    const pred = model.predictPairs(engine.tf, trainRows, testRows, gather(params, model.rowsForPairs(trainRows, testRows)));
    return rmseOf(pred, testRows.values);
  };
  const baseline = rmseOf(new Float32Array(test.length).fill(mean), testRows.values);
  const r = trainLoop({
    engine,
    model,
    examples: data.numItems,
    take: (idx) => takeRows(trainRows, idx),
    batchSize: Number(process.env.AUTOREC_BATCH ?? 32),
    epochs: Number(process.env.AUTOREC_EPOCHS ?? 10),
    seed: 3,
    optimizer: { name: 'adam', lr: Number(process.env.AUTOREC_LR ?? 0.003) },
    onEpoch: (epoch, params, info) => {
      if (process.env.AUTOREC_VERBOSE) t.comment(`epoch ${epoch} loss ${info.loss.toFixed(3)} test RMSE ${evaluate(params).toFixed(4)} (${info.seconds.toFixed(1)} s)`);
    },
  });
  const rmse = evaluate(r.params);
  t.comment(`test RMSE ${rmse.toFixed(4)} vs global mean ${baseline.toFixed(4)} (noise floor ${data.truth.floorRmse.toFixed(4)}), ${r.steps} steps in ${r.seconds.toFixed(1)} s`);
  // Measured: 0.818 vs 0.976 (10 epochs, hidden 100, l2 1, Adam 3e-3, batch 32).
  t.ok(rmse < baseline * 0.9, `AutoRec ${rmse.toFixed(4)} < 0.9 × global mean ${baseline.toFixed(4)}`);
});
