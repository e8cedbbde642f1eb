import t from 'tap';
import { MetricsError, averagePrecisionAt, catalogueCoverage, hitRateAt, hitsAt, ndcgAt, precisionAt, rankOf, recallAt, reciprocalRankAt, relevantCount, topK } from '../mod.ts';

const near = (got: number, want: number, eps = 1e-9): boolean => Math.abs(got - want) < eps;

t.test('topK: order, ties by lower index, exclusion, K beyond the catalogue, NaN', async (t) => {
  const s = new Float32Array([0.1, 0.9, 0.5, 0.9, 0.3]);
  // 0.9 twice (items 1 and 3: lower index first), then 0.5 (item 2).
  t.same(Array.from(topK(s, 3)), [1, 3, 2]);
  t.same(Array.from(topK(s, 3, new Int32Array([3]))), [1, 2, 4]);
  t.same(Array.from(topK(s, 10)), [1, 3, 2, 4, 0], 'K > n gives the whole ranking');
  t.same(Array.from(topK(s, 10, new Int32Array([4, 1, 0, 3, 2]))), [], 'everything excluded');
  t.same(Array.from(topK(new Float64Array([Number.NaN, 1, 0]), 3)), [1, 2, 0], 'NaN ranks last');
  t.same(Array.from(topK(new Float32Array([2, 2, 2, 2]), 2)), [0, 1], 'all tied: lowest ids');
  t.throws(() => topK(s, 0), MetricsError);
  t.throws(() => topK(s, 1.5), MetricsError);
});

t.test('topK agrees with a full sort on tie-heavy random rows', async (t) => {
  let x = 12345;
  const rnd = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) / (1 << 24);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rnd() * 40);
    const s = new Float32Array(n).map(() => Math.floor(rnd() * 5));
    const ex = new Int32Array(Math.floor(rnd() * 5)).map(() => Math.floor(rnd() * n));
    const k = 1 + Math.floor(rnd() * 12);
    const exSet = new Set(ex);
    const ref = [...Array(n).keys()]
      .filter((i) => !exSet.has(i))
      .sort((a, b) => s[b] - s[a] || a - b)
      .slice(0, k);
    if (JSON.stringify(Array.from(topK(s, k, ex))) !== JSON.stringify(ref)) {
      t.fail(`trial ${trial}: ${Array.from(topK(s, k, ex))} vs ${ref}`);
      return;
    }
    const item = Math.floor(rnd() * n);
    if (!exSet.has(item)) {
      const full = [...Array(n).keys()].filter((i) => !exSet.has(i)).sort((a, b) => s[b] - s[a] || a - b);
      t.equal(rankOf(s, item, ex), full.indexOf(item) + 1);
    }
  }
  t.pass('200 rows');
});

t.test('rankOf by hand', async (t) => {
  const s = new Float32Array([0.1, 0.9, 0.5, 0.9, 0.3]);
  t.equal(rankOf(s, 2), 3, 'items 1 and 3 ahead');
  t.equal(rankOf(s, 2, new Int32Array([1])), 2);
  t.equal(rankOf(s, 3), 2, 'tie with item 1, which has the lower id');
  t.throws(() => rankOf(s, 5), MetricsError);
});

// ranked = [7, 3, 9, 1, 5]; relevant {3, 5, 8}: hits at ranks 2 (item 3) and 5 (item 5).
const ranked = new Int32Array([7, 3, 9, 1, 5]);
const rel = new Set([3, 5, 8]);

t.test('precision, recall, HR by hand', async (t) => {
  t.equal(hitsAt(ranked, rel, 3), 1);
  t.equal(precisionAt(ranked, rel, 3), 1 / 3); // 1 hit / 3
  t.equal(precisionAt(ranked, rel, 5), 2 / 5); // 2 hits / 5
  t.equal(precisionAt(ranked, rel, 10), 2 / 10, 'K beyond the list still divides by K');
  t.equal(recallAt(ranked, rel, 2), 1 / 2); // 1 hit / min(2, 3)
  t.equal(recallAt(ranked, rel, 3), 1 / 3); // 1 / min(3, 3)
  t.equal(recallAt(ranked, rel, 5), 2 / 3); // 2 / min(5, 3)
  t.equal(hitRateAt(ranked, rel, 1), 0); // item 7 is not relevant
  t.equal(hitRateAt(ranked, rel, 2), 1);
});

t.test('AP@K and reciprocal rank by hand', async (t) => {
  // AP@5: P@2 = 1/2 and P@5 = 2/5 at the hits; (0.5 + 0.4) / min(5, 3) = 0.3.
  t.ok(near(averagePrecisionAt(ranked, rel, 5), 0.3));
  // AP@2: P@2 = 1/2 at the one hit; 0.5 / min(2, 3) = 0.25.
  t.ok(near(averagePrecisionAt(ranked, rel, 2), 0.25));
  // Perfect list: ranks 1..3 all hits: (1 + 1 + 1) / 3 = 1.
  t.ok(near(averagePrecisionAt(new Int32Array([3, 5, 8, 0]), rel, 4), 1));
  t.equal(reciprocalRankAt(ranked, rel), 0.5); // first hit at rank 2
  t.equal(reciprocalRankAt(ranked, rel, 1), 0);
  t.equal(reciprocalRankAt(new Int32Array(0), rel), 0, 'empty list');
});

t.test('NDCG@K binary and graded by hand', async (t) => {
  // Binary: DCG@5 = 1/log2(3) + 1/log2(6) = 0.630930 + 0.386853 = 1.017783;
  // IDCG@5 = 1 + 1/log2(3) + 1/log2(4) = 1 + 0.630930 + 0.5 = 2.130930; NDCG = 0.477624.
  t.ok(near(ndcgAt(ranked, rel, 5), (1 / Math.log2(3) + 1 / Math.log2(6)) / (1 + 1 / Math.log2(3) + 0.5)));
  t.ok(Math.abs(ndcgAt(ranked, rel, 5) - 0.477624) < 1e-6);
  // K = 1: rank 1 is a miss → 0.
  t.equal(ndcgAt(ranked, rel, 1), 0);
  const graded = new Map([
    [3, 3],
    [5, 1],
    [8, 2],
    [7, 0], // grade 0 = not relevant
  ]);
  t.equal(relevantCount(graded), 3);
  // Linear gains: DCG@5 = 3/log2(3) + 1/log2(6) = 1.892789 + 0.386853 = 2.279642;
  // IDCG@5 = 3/1 + 2/log2(3) + 1/log2(4) = 3 + 1.261860 + 0.5 = 4.761860; NDCG = 0.478729.
  t.ok(near(ndcgAt(ranked, graded, 5), (3 / Math.log2(3) + 1 / Math.log2(6)) / (3 + 2 / Math.log2(3) + 0.5)));
  t.ok(Math.abs(ndcgAt(ranked, graded, 5) - 0.478729) < 1e-6);
  // Exponential gains 2^g − 1 = 7, 1, 3: DCG = 7/log2(3) + 1/log2(6) = 4.803354;
  // IDCG = 7 + 3/log2(3) + 1/2 = 9.392789; NDCG = 0.511388.
  t.ok(Math.abs(ndcgAt(ranked, graded, 5, { gain: 'exponential' }) - 0.511388) < 1e-6);
  // Graded hit-based metrics use grade > 0 as relevant: same as the binary set.
  t.equal(precisionAt(ranked, graded, 5), 2 / 5);
  t.equal(ndcgAt(new Int32Array([3, 8, 5]), graded, 3), 1, 'ideal order');
  t.throws(() => relevantCount(new Map([[1, -1]])), MetricsError);
  t.throws(() => ndcgAt(ranked, new Map([[1, Number.NaN]]), 3), MetricsError);
});

t.test('no relevant items gives NaN; bad K throws', async (t) => {
  const none = new Set<number>();
  for (const f of [recallAt, hitRateAt, averagePrecisionAt, ndcgAt, reciprocalRankAt]) t.ok(Number.isNaN(f(ranked, none, 3)), f.name);
  t.equal(precisionAt(ranked, none, 3), 0);
  for (const f of [hitsAt, averagePrecisionAt, ndcgAt, reciprocalRankAt]) t.throws(() => f(ranked, rel, 0), MetricsError, f.name);
});

t.test('catalogue coverage by hand', async (t) => {
  const lists = [new Int32Array([0, 1, 2]), new Int32Array([1, 3, 4])];
  t.equal(catalogueCoverage(lists, 10, 2), 3 / 10); // {0, 1, 3}
  t.equal(catalogueCoverage(lists, 10, 3), 5 / 10); // {0, 1, 2, 3, 4}
  t.throws(() => catalogueCoverage([new Int32Array([10])], 10, 1), MetricsError);
  t.throws(() => catalogueCoverage(lists, 0, 1), MetricsError);
  t.throws(() => catalogueCoverage(lists, 10, 0), MetricsError);
});
