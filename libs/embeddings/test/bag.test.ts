import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import { EmbeddingError, bagBackward, bagForward, type BagMode } from '../mod.ts';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, eps = 1e-5): boolean => a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]) <= eps);

// A table of 6 rows × dim 3; bags over rows {1, 4, 5, 1} (row 1 twice), {}, {5}.
const dim = 3;
const numRows = 6;
const table = Float32Array.from({ length: numRows * dim }, (_, i) => Math.sin(i * 0.7 + 0.3));
const offsets = new Int32Array([0, 4, 4, 5]);
const ids = new Int32Array([1, 4, 5, 1, 5]);
const weights = new Float32Array([0.5, 2, -1, 1.5, 3]);
const gathered = { rows: new Int32Array([1, 4, 5]), values: Float32Array.from([1, 4, 5].flatMap((r) => [...table.subarray(r * dim, (r + 1) * dim)])) };

/** The bags as a dense n × numRows matrix X (x_bj = combined weight of row j in bag b). */
function denseX(mode: BagMode, w: Float32Array | undefined): Float32Array {
  const n = offsets.length - 1;
  const x = new Float32Array(n * numRows);
  for (let b = 0; b < n; b++) {
    let s = 0;
    for (let j = offsets[b]; j < offsets[b + 1]; j++) s += mode === 'mean' ? (w?.[j] ?? 1) : (w?.[j] ?? 1) ** 2;
    const scale = mode === 'sum' ? 1 : s === 0 ? 0 : mode === 'mean' ? 1 / s : 1 / Math.sqrt(s);
    for (let j = offsets[b]; j < offsets[b + 1]; j++) x[b * numRows + ids[j]] += (w?.[j] ?? 1) * scale;
  }
  return x;
}

t.test('bags equal X·W and their gradient Xᵀ·G (TF.js matMul), every combiner, weighted or not', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const n = offsets.length - 1;
  const gradOut = Float32Array.from({ length: n * dim }, (_, i) => Math.cos(i * 1.3));
  for (const mode of ['sum', 'mean', 'sqrtn'] as const) {
    for (const w of [undefined, weights]) {
      const label = `${mode}${w ? ' weighted' : ''}`;
      const X = tf.tensor2d(denseX(mode, w), [n, numRows]);
      const W = tf.tensor2d(table, [numRows, dim]);
      const want = tf.matMul(X, W).dataSync();
      t.ok(close(bagForward(gathered, dim, offsets, ids, w, mode), want), `forward ${label}`);
      // d(Σ G ⊙ XW)/dW = Xᵀ G, dense over all rows; the bag gives the rows it touched only.
      const dW = tf.matMul(X, tf.tensor2d(gradOut, [n, dim]), true, false).dataSync();
      const g = bagBackward(gradOut, dim, offsets, ids, w, mode);
      t.same([...g.rows], [1, 4, 5], `backward ${label}: distinct rows, sorted`);
      t.ok(
        close(
          g.values,
          [1, 4, 5].flatMap((r) => [...dW.subarray(r * dim, (r + 1) * dim)]),
        ),
        `backward ${label}`,
      );
      tf.dispose([X, W]);
    }
  }
  t.same([...bagForward(gathered, dim, offsets, ids).subarray(3, 6)], [0, 0, 0], 'an empty bag gives zeros');
  t.ok(
    close(
      bagForward(gathered, dim, offsets, ids, undefined, 'sqrtn').subarray(0, 3),
      [0, 1, 2].map((k) => (2 * table[dim + k] + table[4 * dim + k] + table[5 * dim + k]) / 2),
    ),
    'sqrtn is |N|^-½ Σ e_j',
  );
});

t.test('bag errors name the problem', async (t) => {
  t.throws(() => bagForward(gathered, 0, offsets, ids), /dim must be a positive integer/);
  t.throws(() => bagForward(gathered, dim, new Int32Array([0, 4]), ids), /end at ids.length/);
  t.throws(() => bagForward(gathered, dim, new Int32Array([0, 3, 2, 5]), ids), /offsets decrease at bag 1/);
  t.throws(() => bagForward(gathered, dim, offsets, ids, new Float32Array(2)), /2 weights for 5 ids/);
  t.throws(() => bagForward({ rows: gathered.rows, values: new Float32Array(2) }, dim, offsets, ids), /gathered values/);
  t.throws(() => bagForward({ rows: new Int32Array([1, 4]), values: gathered.values.subarray(0, 6) }, dim, offsets, ids), EmbeddingError);
  t.throws(() => bagForward({ rows: new Int32Array(0), values: new Float32Array(0) }, dim, offsets, ids), /row 1 was not gathered/);
  t.throws(() => bagBackward(new Float32Array(2), dim, offsets, ids), /gradient has 2 values for 3 bags/);
  t.same([...bagForward(gathered, dim, new Int32Array([0, 1]), new Int32Array([4]), new Float32Array([0]), 'mean')], [0, 0, 0], 'zero total weight gives zeros, not NaN');
});
