// The one binary search: lower bound within a range, index of a present/absent value.
import t from 'tap';
import { lowerBound, sortedIndexOf } from '../mod.ts';

t.test('lowerBound is the first position whose value is >= the one sought', async (t) => {
  const a = new Int32Array([1, 3, 3, 7]);
  t.equal(lowerBound(a, 0), 0);
  t.equal(lowerBound(a, 3), 1);
  t.equal(lowerBound(a, 4), 3);
  t.equal(lowerBound(a, 8), 4, 'past the end when every value is smaller');
  t.equal(lowerBound(new Float64Array(0), 1), 0);
  t.equal(lowerBound(a, 3, 2, 4), 2, 'within a range');
});

t.test('sortedIndexOf finds unique ids and says -1 for absent ones', async (t) => {
  const rows = new Int32Array([2, 5, 9, 11]);
  t.equal(sortedIndexOf(rows, 9), 2);
  t.equal(sortedIndexOf(rows, 2), 0);
  t.equal(sortedIndexOf(rows, 11), 3);
  t.equal(sortedIndexOf(rows, 6), -1);
  t.equal(sortedIndexOf(rows, 12), -1);
  t.equal(sortedIndexOf(new Int32Array(0), 1), -1);
  t.equal(sortedIndexOf(rows, 9, 0, 2), -1, 'outside the range');
  t.equal(sortedIndexOf(rows, 9, 2, 4), 2);
});
