// The trainers' non-finite guard: a NaN/Inf loss or gradient is a DivergenceError naming the step,
// the rank and where; nonFiniteParam finds the first bad parameter (the launcher refuses to save it).
import t from 'tap';
import { DivergenceError, assertFiniteStep, firstNonFinite, nonFiniteParam } from '../mod.ts';

const finite = { loss: 0.5, sparse: { user: { rows: Int32Array.from([1, 2]), values: new Float32Array([0.1, 0.2]) } }, dense: { mean: new Float32Array([0.3]) } };

t.test('assertFiniteStep passes finite steps and names where a step diverged', async (t) => {
  t.doesNotThrow(() => assertFiniteStep(finite, { step: 3, rank: 1 }));
  const cases: [string, typeof finite, RegExp][] = [
    ['loss', { ...finite, loss: Number.NaN }, /step 4 on rank 1: the loss is NaN/],
    ['user', { ...finite, sparse: { user: { rows: Int32Array.from([1]), values: new Float32Array([Number.POSITIVE_INFINITY]) } } }, /the gradient of 'user' is Infinity/],
    ['mean', { ...finite, dense: { mean: new Float32Array([Number.NEGATIVE_INFINITY]) } }, /the gradient of 'mean' is -Infinity/],
  ];
  for (const [where, step, message] of cases) {
    try {
      assertFiniteStep(step, { step: 4, rank: 1 });
      t.fail(`${where}: expected a DivergenceError`);
    } catch (err) {
      t.ok(err instanceof DivergenceError, `${where}: a DivergenceError`);
      t.equal((err as DivergenceError).where, where);
      t.equal((err as DivergenceError).step, 4);
      t.equal((err as DivergenceError).rank, 1);
      t.match((err as Error).message, message);
      t.match((err as Error).message, /lower the learning rate/, 'says what to do');
    }
  }
});

t.test('firstNonFinite and nonFiniteParam', async (t) => {
  t.equal(firstNonFinite(new Float32Array([1, 2, 3])), undefined);
  t.same(firstNonFinite([1, Number.NaN, Number.POSITIVE_INFINITY]), { index: 1, value: Number.NaN });
  const store = { tables: { user: { data: new Float32Array([1, 2]) } }, dense: { mean: new Float32Array([3]) } };
  t.equal(nonFiniteParam(store), undefined);
  store.tables.user.data[1] = Number.NaN;
  t.same(nonFiniteParam(store), { name: 'user', index: 1, value: Number.NaN });
  store.tables.user.data[1] = 0;
  store.dense.mean[0] = Number.POSITIVE_INFINITY;
  t.same(nonFiniteParam(store), { name: 'mean', index: 0, value: Number.POSITIVE_INFINITY });
});
