// The timing half of tools/gpu-check/run: backend and device, a 4096² matmul, one NeuMF epoch.
// Exits non-zero when the native backend is not the GPU build or TensorFlow sees no GPU device.
import { selectBackend } from '@actorflow/engine';
import { loadJobDataset, dataFacts, heldOutOf } from '@actorflow/feed';
import { exampleSet } from '@actorflow/data';
import { createModel, modelEntry, withDataHyper } from '@actorflow/models';
import { trainLocal } from '@actorflow/strategies';

const engine = await selectBackend({ backend: 'tensorflow', log: (l) => console.log(l) });
console.log(`backend: ${engine.name}: ${engine.detail}`);
const tf = engine.tf;
// The detail names the package and TensorFlow's device kind ("… (GPU) via @tensorflow/tfjs-node-gpu").
if (!/tfjs-node-gpu/.test(engine.detail)) {
  console.error(`gpu-check: the native backend is not the GPU build (${engine.detail}); see the build log above`);
  process.exit(1);
}
const n = 4096;
const a = tf.randomNormal([n, n]);
const b = tf.randomNormal([n, n]);
tf.matMul(a, b).dataSync(); // warm-up (kernel selection, cuBLAS handles)
const times: number[] = [];
for (let k = 0; k < 5; k++) {
  const t0 = performance.now();
  const c = tf.matMul(a, b);
  c.dataSync();
  c.dispose();
  times.push(performance.now() - t0);
}
const ms = times.sort((x, y) => x - y)[2];
console.log(`matmul ${n}²: median ${ms.toFixed(1)} ms, ${((2 * n ** 3) / (ms / 1000) / 1e9).toFixed(0)} GFLOP/s (incl. reading the result back)`);
if ((2 * n ** 3) / (ms / 1000) / 1e9 < 500) console.warn('gpu-check: below 500 GFLOP/s: TensorFlow probably runs on the CPU (see its device log above)');
const ds = await loadJobDataset({ source: 'synthetic:small', seed: 42 });
const model = createModel('neumf', withDataHyper('neumf', dataFacts(ds)));
const entry = modelEntry('neumf');
const held = heldOutOf(model, ds);
const t0 = performance.now();
trainLocal({
  engine,
  model,
  train: exampleSet('ratings', { ratings: ds.train }),
  ...(held.history !== undefined ? { history: held.history } : {}),
  batchSize: entry.recommended?.batchSize ?? 256,
  epochs: 1,
  seed: 42,
  optimizer: entry.recommended?.optimizer ?? { name: 'adam', lr: 0.002 },
});
console.log(`neumf: one epoch of synthetic:small in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
