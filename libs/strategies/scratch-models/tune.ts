import { selectBackend } from '@actorflow/engine';
import { syntheticRatings, randomSplit, groupRows } from '@actorflow/data';
import { createModel } from '@actorflow/models';
import { trainLocal } from '../mod.ts';

const [model, opt, lrS, epochsS, dimS, extra, size] = process.argv.slice(2);
const engine = await selectBackend({ backend: process.env.BACKEND ?? 'cpu' });
const data = syntheticRatings((size ?? 'tiny') as 'tiny', 1, process.env.PER ? { perUser: Number(process.env.PER) } : {});
const { train, test } = randomSplit(data.ratings, { fraction: 0.1, seed: 1 });
let mean = 0; for (const r of train.rating) mean += r; mean /= train.length;
let se = 0; for (const r of test.rating) se += (r - mean) ** 2;
const t0 = Date.now();
const hyper: Record<string, number | string> = { numUsers: data.numUsers, numItems: data.numItems, globalMean: mean, dim: Number(dimS ?? 16) };
if (extra) for (const kv of extra.split(';')) { const [k, v] = kv.split('='); hyper[k] = isNaN(Number(v)) ? v : Number(v); }
const m = createModel(model, hyper);
const res = trainLocal({ engine, model: m as never, train, test: { ratings: test, history: groupRows(train, 'user'), numItems: data.numItems }, history: groupRows(train, 'user'), batchSize: Number(process.env.BS ?? 64), epochs: Number(epochsS ?? 20), seed: 1, optimizer: { name: opt as 'adam', lr: Number(lrS), l2: Number(process.env.L2 ?? 0), dense: process.env.DENSE === '1' },
  onEpoch: (e, mm) => { if (e % 5 === 4) console.log(e, JSON.stringify(mm)); } });
console.log(model, opt, lrS, 'mean-rmse', Math.sqrt(se / test.length).toFixed(4), 'floor', data.truth.floorRmse.toFixed(4), 'final', JSON.stringify(res.metrics), `${Date.now() - t0} ms`);
