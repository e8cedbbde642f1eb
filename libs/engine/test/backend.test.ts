import t from 'tap';
import { BackendUnavailableError, selectBackend } from '../mod.ts';

t.test('picks the best backend that loads and says why it skipped the others', async (t) => {
  const lines: string[] = [];
  const e = await selectBackend({ log: (l) => lines.push(l) });
  t.ok(['tensorflow', 'wasm', 'cpu'].includes(e.name));
  t.equal(e.tf.getBackend(), e.name);
  t.match(lines[0], /TF.js backend: /);
  if (e.name !== 'tensorflow') t.match(e.skipped[0], /^tensorflow: /);
});

t.test('an explicit backend is honoured, and an unavailable one is a clear error', async (t) => {
  for (const name of ['cpu', 'wasm']) {
    const e = await selectBackend({ backend: name });
    t.equal(e.name, name);
    const y = e.tf.matMul(e.tf.tensor2d([[1, 2]]), e.tf.tensor2d([[3], [4]])).dataSync();
    t.equal(y[0], 11, `matmul on ${name}`);
  }
  await t.rejects(selectBackend({ backend: 'gpu' }), BackendUnavailableError);
  await t.rejects(selectBackend({ backend: 'gpu' }), /unknown backend/);
  let native = true;
  try {
    await import('@tensorflow/tfjs-node' as string);
  } catch {
    native = false;
  }
  if (!native) await t.rejects(selectBackend({ backend: 'tensorflow' }), /tfjs-node/);
});
