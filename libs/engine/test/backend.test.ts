import t from 'tap';
import type { Tensor, Tensor2D } from '@tensorflow/tfjs';
import { BackendUnavailableError, availableBackends, readTidy, selectBackend } from '../mod.ts';
import { NATIVE_PACKAGES, nativeReason, probeNative } from '../internal_mod.ts';

t.test('picks the best backend that loads and says why it skipped the others', async (t) => {
  const lines: string[] = [];
  const e = await selectBackend({ log: (l) => lines.push(l) });
  t.ok(['tensorflow', 'wasm', 'cpu'].includes(e.name));
  t.equal(e.tf.getBackend(), e.name);
  t.match(lines[0], /TF.js backend: /);
  t.equal(e.name, (await availableBackends())[0], 'the best available one');
  if (e.name !== 'tensorflow') t.match(e.skipped[0], /^tensorflow: .*(native:from-python|not installed)/);
  else t.match(e.detail, /^TensorFlow \d+\.\d+\.\d+ \((CPU|GPU)\) via @tensorflow\/tfjs-node/);
  t.comment(lines[0]);
});

t.test('availableBackends lists what initialises here, fastest first, and leaves the backend alone', async (t) => {
  await selectBackend({ backend: 'cpu' });
  const names = await availableBackends();
  t.same(names.slice(-2), ['wasm', 'cpu']);
  t.equal((await selectBackend({ backend: 'cpu' })).tf.getBackend(), 'cpu');
  t.equal(await availableBackends(), await availableBackends(), 'probed once');
});

t.test('an explicit backend is honoured, and an unavailable one is a clear error', async (t) => {
  for (const name of await availableBackends()) {
    const e = await selectBackend({ backend: name });
    t.equal(e.name, name);
    const y = e.tf.matMul(e.tf.tensor2d([[1, 2]]), e.tf.tensor2d([[3], [4]])).dataSync();
    t.equal(y[0], 11, `matmul on ${name}`);
  }
  await t.rejects(selectBackend({ backend: 'gpu' }), BackendUnavailableError);
  await t.rejects(selectBackend({ backend: 'gpu' }), /unknown backend/);
  if (!(await availableBackends()).includes('tensorflow')) await t.rejects(selectBackend({ backend: 'tensorflow' }), /tfjs-node/);
});

t.test('a missing native package is a reason, not an error', async (t) => {
  const p = await probeNative(['@actorflow/no-such-native-package']);
  t.match(p.reason, /@actorflow\/no-such-native-package is not installed/);
  t.equal(p.detail, undefined);
  t.same(NATIVE_PACKAGES, ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
});

t.test('why a native package did not load says what to do', async (t) => {
  const pkg = '@tensorflow/tfjs-node';
  const notFound = Object.assign(new Error(`Cannot find package '${pkg}' imported from x.ts`), { code: 'ERR_MODULE_NOT_FOUND' });
  t.equal(nativeReason(pkg, notFound), `${pkg} is not installed`);
  const unbuilt = new Error('The Node.js native addon module (tfjs_binding.node) can not be found at path: /x/lib/napi-v8/tfjs_binding.node. \nPlease run …');
  t.match(nativeReason(pkg, unbuilt), /is installed but its addon is not built \(run `npm run native:from-python`/);
  const abi = new Error('/x/tfjs_binding.node: undefined symbol: TFE_NewOp\nmore');
  t.equal(nativeReason(pkg, abi), `${pkg} does not load (/x/tfjs_binding.node: undefined symbol: TFE_NewOp; run \`npm run native:from-python\` to build it against a TensorFlow wheel)`);
  t.match(nativeReason(pkg, 'a string'), /does not load \(a string;/);
});

// The ops the models use (gather, matmul, elementwise, reductions, gradients), on every backend
// that initialises here; each must agree with cpu.
t.test('every available backend computes what cpu computes, gradients included', async (t) => {
  const run = async (name: string) => {
    const { tf } = await selectBackend({ backend: name });
    const [loss, grad, sum] = readTidy(tf, () => {
      const table = tf.tensor2d(
        Array.from({ length: 40 }, (_, i) => Math.sin(i * 0.7)),
        [10, 4],
      );
      const other = tf.tensor2d(
        Array.from({ length: 24 }, (_, i) => Math.cos(i * 0.3)),
        [4, 6],
      );
      const rows = tf.tensor1d([3, 0, 7, 3], 'int32');
      const target = tf.tensor2d(
        Array.from({ length: 24 }, (_, i) => (i % 5) / 5),
        [4, 6],
      );
      // As the models do: gather the batch's rows, then differentiate with respect to them.
      const gathered = tf.gather(table, rows);
      const f = (w: Tensor) => tf.losses.meanSquaredError(target, tf.sigmoid(tf.matMul(w as Tensor2D, other)));
      const g = tf.grad(f)(gathered);
      return [f(gathered), g, tf.sum(tf.relu(tf.sub(table, 0.1)))];
    });
    return { loss: loss[0], grad: Array.from(grad), sum: sum[0] };
  };
  const ref = await run('cpu');
  for (const name of await availableBackends()) {
    const r = await run(name);
    t.ok(Math.abs(r.loss - ref.loss) < 1e-5, `${name}: loss ${r.loss} ≈ ${ref.loss}`);
    t.ok(Math.abs(r.sum - ref.sum) < 1e-4, `${name}: sum`);
    t.ok(
      r.grad.every((v, i) => Math.abs(v - ref.grad[i]) < 1e-5),
      `${name}: gradient of a gather → matmul → sigmoid → MSE chain`,
    );
  }
});
