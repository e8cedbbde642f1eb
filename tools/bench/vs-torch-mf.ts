// One actorflow row of bench:vs-torch, in a process of its own (so its wall time is a whole process,
// like PyTorch's): biased MF trained by the single-process trainer (trainLocal — the same model,
// kernels and optimizer every strategy runs) on train.csv, scored on test.csv. Prints one JSON line.
//   tsx vs-torch-mf.ts --train F --test F --users N --items N [--dim 100 --lr 0.01 --l2 0.00028 --batch 5001 --epochs 100]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { selectBackend } from '@actorflow/engine';
import type { Ratings } from '@actorflow/data';
import { createModel } from '@actorflow/models';
import { evaluate, trainLocal } from '@actorflow/strategies';

const { values: v } = parseArgs({
  options: {
    train: { type: 'string' },
    test: { type: 'string' },
    users: { type: 'string' },
    items: { type: 'string' },
    dim: { type: 'string', default: '100' },
    lr: { type: 'string', default: '0.01' },
    l2: { type: 'string', default: '0.00028' },
    batch: { type: 'string', default: '5001' },
    epochs: { type: 'string', default: '100' },
  },
});

/** user,item,rating with 0-based ids and a header line: what vs-torch.ts writes for every engine. */
export function readPlainCsv(path: string): Ratings {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.length > 0);
  const user = new Int32Array(lines.length);
  const item = new Int32Array(lines.length);
  const rating = new Float32Array(lines.length);
  lines.forEach((l, k) => {
    const [u, i, r] = l.split(',');
    user[k] = Number(u);
    item[k] = Number(i);
    rating[k] = Number(r);
  });
  return { user, item, rating, length: lines.length };
}

const train = readPlainCsv(String(v.train));
const test = readPlainCsv(String(v.test));
const engine = await selectBackend({ backend: 'cpu' }); // MF runs no TF.js op per step: the backend does not matter
let mean = 0;
for (const r of train.rating) mean += r;
mean /= train.length;
const epochs = Number(v.epochs);
// reg 0: the optimizer's l2 only, PyTorch's recipe (mf's per-example reg defaults to 0.05).
const model = createModel('mf', { numUsers: Number(v.users), numItems: Number(v.items), dim: Number(v.dim), initStd: 0.1, reg: 0, globalMean: mean });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const res = trainLocal({ engine, model, train, batchSize: Number(v.batch), epochs, seed: 42, optimizer: { name: 'adam', lr: Number(v.lr), l2: Number(v.l2) } });
const trainSeconds = (performance.now() - t0) / 1000;
const cpuSeconds = ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cpu0));
const m = evaluate(engine, model, res.params, test);
console.log(JSON.stringify({ trainSeconds, cpuSeconds, testMse: m.rmse * m.rmse, ratings: train.length * epochs }));
