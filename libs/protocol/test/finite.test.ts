// firstNonFiniteIndex: the branch-free scan equals the obvious loop on every float32 bit pattern
// (NaNs of every payload, ±∞, subnormals, ±0, the largest finite values), at every position and
// on views with a byte offset.
import t from 'tap';
import fc from 'fast-check';
import { firstNonFiniteIndex } from '../mod.ts';

const naive = (v: Float32Array): number => v.findIndex((x) => !Number.isFinite(x));

t.test('equals the obvious loop on arbitrary bit patterns', async () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 67 }), fc.nat(7), (bits, skip) => {
      const all = new Int32Array(bits.length + skip);
      all.set(bits, skip);
      const v = new Float32Array(all.buffer, 4 * skip, bits.length);
      return firstNonFiniteIndex(v) === naive(v);
    }),
    { numRuns: 2000 },
  );
});

t.test('finds NaN and ±Infinity wherever they are; finite extremes pass', async (t) => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    for (const at of [0, 1, 2, 3, 4, 9, 10]) {
      const v = new Float32Array(11).fill(0.5);
      v[at] = bad;
      v[10] = bad; // a later one too: the first is reported
      t.equal(firstNonFiniteIndex(v), at, `${bad} at ${at}`);
    }
  }
  t.equal(firstNonFiniteIndex(new Float32Array([3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0])), -1, 'largest, subnormal and zero values are finite');
  t.equal(firstNonFiniteIndex(new Float32Array(0)), -1, 'empty');
});
