// Every model of the zoo trains on every TF.js backend that initialises here — native tensorflow
// (after `npm run native:from-python`), wasm, cpu — to the same parameters as on cpu, up to
// float32 rounding: the engine is a seam, not a fork. Which backends ran is in the test output.
import t from 'tap';
import { availableBackends, selectBackend } from '@actorflow/engine';
import { evaluateModel, trainLocal } from '../mod.ts';
import { B, SEED, cases, maxDiff, zooCase, zooData } from './fixtures/zoo.ts';

t.test('the zoo on every available backend equals the cpu backend', async (t) => {
  const backends = await availableBackends();
  t.comment(`backends here: ${backends.join(', ')}${backends.includes('tensorflow') ? '' : ' (native tensorflow not built: run npm run native:from-python)'}`);
  const z = await zooData();
  for (const c of cases) {
    const { make, train, held } = zooCase(c, z);
    const run = async (backend: string) => {
      const engine = await selectBackend({ backend });
      const model = make();
      const r = trainLocal({ engine, model, train, history: z.history, batchSize: 2 * B, epochs: 1, seed: SEED, optimizer: c.optimizer });
      return { params: r.params, metrics: evaluateModel(engine, model, r.params, held) };
    };
    const ref = await run('cpu');
    for (const backend of backends.filter((b) => b !== 'cpu')) {
      const other = await run(backend);
      const d = maxDiff(other.params, ref.params);
      // Kernels differ in summation order (and fused ops); a few float32 ulps per step, compounded (measured ≤ 3.2e-7).
      t.ok(d < 1e-5, `${c.label ?? c.name} on ${backend}: max |Δparam| vs cpu = ${d.toExponential(2)}`);
      const [k, v] = Object.entries(ref.metrics)[0];
      t.ok(Math.abs(other.metrics[k] - v) < 1e-4, `${c.label ?? c.name} on ${backend}: ${k} ${other.metrics[k].toFixed(5)} vs cpu ${v.toFixed(5)}`);
    }
  }
});
