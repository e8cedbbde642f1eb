import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import type { ImageBatch } from '@actorflow/data';
import { MnistAutoencoder, MnistCnn, createModel, listModels, type GatheredParams, type TrainableModel } from '../mod.ts';
import { checkGradients, fill } from './gradcheck.ts';

// Two smooth "images" (gradient checks need no ties in max-pool and no ReLU kinks nearby).
const pixels = new Float32Array(2 * 784).map((_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + Math.cos(i * 0.011)));
const batch: ImageBatch = { pixels, label: new Int32Array([3, 7]) };

function params(model: TrainableModel<unknown>, scale: number): GatheredParams {
  const dense: Record<string, Float32Array> = {};
  for (const s of model.denseSpecs()) dense[s.name] = fill(s.size, s.name.length, s.name.endsWith('.b') ? 0.05 : scale);
  return { tables: {}, dense };
}

for (const backend of ['cpu', 'wasm']) {
  t.test(`mnist-cnn gradients match finite differences (${backend})`, async (t) => {
    const { tf } = await selectBackend({ backend });
    const model = new MnistCnn({ filters: 2, dense: 3 });
    const p = params(model, 0.3);
    const res = model.computeGradients(tf, batch, p);
    t.equal(res.count, 2);
    t.same(Object.keys(res.sparse), []);
    checkGradients(t, p, res, (q) => model.computeGradients(tf, batch, q).loss, { eps: 3e-3, tol: 5e-3, maxPerTensor: 40 });
    const probs = model.predict(tf, batch, p);
    t.equal(probs.length, 20);
    t.ok(Math.abs(probs.subarray(0, 10).reduce((a, b) => a + b, 0) - 1) < 1e-5, 'probabilities sum to 1');
    const loss = -(Math.log(probs[3]) + Math.log(probs[17])) / 2;
    t.ok(Math.abs(loss - res.loss) < 1e-4, 'loss = mean cross-entropy of predict');
  });

  t.test(`mnist-ae gradients match finite differences (${backend})`, async (t) => {
    const { tf } = await selectBackend({ backend });
    const model = new MnistAutoencoder({ code: 3 });
    const p = params(model, 0.2);
    const res = model.computeGradients(tf, batch, p);
    checkGradients(t, p, res, (q) => model.computeGradients(tf, batch, q).loss, { eps: 1e-2, tol: 5e-3, maxPerTensor: 40 });
    const rec = model.predict(tf, batch, p);
    t.equal(rec.length, 2 * 784);
    let bce = 0;
    for (let i = 0; i < rec.length; i++) bce -= pixels[i] * Math.log(rec[i]) + (1 - pixels[i]) * Math.log(1 - rec[i]);
    t.ok(Math.abs(bce / rec.length - res.loss) < 1e-4, 'loss = mean per-pixel BCE of predict');
  });
}

t.test('im2col patches are the 3×3 windows', async (t) => {
  const img = new Float32Array(784).map((_, i) => i);
  const P = MnistCnn.patches(img, 1);
  t.equal(P.length, 26 * 26 * 9);
  // Window at (y=1, x=2): rows 1…3, columns 2…4.
  const at = (1 * 26 + 2) * 9;
  t.same([...P.subarray(at, at + 9)], [30, 31, 32, 58, 59, 60, 86, 87, 88]);
});

t.test('registry and bad input', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  t.ok(listModels().some((m) => m.name === 'mnist-cnn'));
  t.ok(listModels().some((m) => m.name === 'mnist-ae'));
  const cnn = createModel('mnist-cnn');
  t.equal(cnn.input, 'images');
  t.equal(cnn.task, 'classification');
  t.same(
    cnn.denseSpecs().map((s) => [s.name, s.size]),
    [
      ['conv.w', 288],
      ['conv.b', 32],
      ['fc1.w', 5408 * 64],
      ['fc1.b', 64],
      ['fc2.w', 640],
      ['fc2.b', 10],
    ],
  );
  t.same(cnn.tableSpecs(), []);
  t.same(cnn.rowsFor(batch), {});
  const ae = createModel('mnist-ae');
  t.equal(ae.task, 'reconstruction');
  t.same(
    ae.denseSpecs().map((s) => s.size),
    [784 * 32, 32, 32 * 784, 784],
  );
  t.same(ae.rowsFor(batch), {});
  t.throws(() => createModel('mnist-cnn', { filters: 0 }), /filters/);
  t.throws(() => new MnistCnn({ filters: 2, dense: 1.5 }), /dense must be a positive integer/);
  t.throws(() => createModel('mnist-ae', { code: -1 }), /code/);
  t.throws(() => new MnistAutoencoder({ code: 0 }), /code must be/);
  const small = new MnistCnn({ filters: 2, dense: 3 });
  const p = params(small, 0.3);
  t.throws(() => small.computeGradients(tf, { pixels: new Float32Array(0), label: new Int32Array(0) }, p), /empty batch/);
  t.throws(() => small.computeGradients(tf, { pixels: new Float32Array(100), label: new Int32Array(1) }, p), /multiple of 784/);
  t.throws(() => small.computeGradients(tf, { pixels, label: new Int32Array([1]) }, p), /2 images but 1 labels/);
  t.throws(() => small.computeGradients(tf, { pixels, label: new Int32Array([1, 10]) }, p), /label 10/);
  t.throws(() => small.computeGradients(tf, batch, { tables: {}, dense: {} }), /dense 'conv.w' is missing/);
  t.throws(() => small.computeGradients(tf, batch, { tables: {}, dense: { ...p.dense, 'fc2.b': new Float32Array(3) } }), /'fc2.b' has 3 values, expected 10/);
  t.equal(small.predict(tf, { pixels: new Float32Array(0), label: new Int32Array(0) }, p).length, 0);
  const sae = new MnistAutoencoder({ code: 3 });
  t.throws(() => sae.computeGradients(tf, { pixels: new Float32Array(0), label: new Int32Array(0) }, params(sae, 0.2)), /empty batch/);
  t.equal(sae.predict(tf, { pixels: new Float32Array(0), label: new Int32Array(0) }, params(sae, 0.2)).length, 0);
});
