import t from 'tap';
import { MetricsError, RankingAccumulator, SampledRankingAccumulator, sampleNegatives, sampledCandidates, sampledRanking } from '../mod.ts';

const near = (got: number, want: number, eps = 1e-9): boolean => Math.abs(got - want) < eps;
const f32 = (a: number[]): Float32Array => new Float32Array(a);
const i32 = (a: number[]): Int32Array => new Int32Array(a);

// 6 items, ks [1, 3].
// User A: scores descending by id, item 0 seen (excluded), relevant {2, 5}.
//   Ranking without item 0: [1, 2, 3, 4, 5]; top 3 = [1, 2, 3]; hit at rank 2.
//   K=1: everything 0.  K=3: P = 1/3, R = 1/min(3,2) = 1/2,
//   NDCG = (1/log2 3) / (1 + 1/log2 3) = 0.630930/1.630930 = 0.386853, AP = (1/2)/min(3,2) = 0.25,
//   HR = 1, ARHR = 1/2.  MRR: best relevant item 2 has rank 2 → 1/2.
// User B: scores ascending, nothing seen, relevant {5}: ranking [5, 4, 3, …], hit at rank 1.
//   K=1 and K=3: P@1 = 1, P@3 = 1/3, R = 1, NDCG = 1, AP = 1, HR = 1, ARHR = 1; MRR = 1.
// User C: no relevant items → skipped.
const sA = f32([0.9, 0.8, 0.7, 0.6, 0.5, 0.4]);
const sB = f32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
const ndcgA3 = 1 / Math.log2(3) / (1 + 1 / Math.log2(3));

t.test('RankingAccumulator by hand', async (t) => {
  const acc = new RankingAccumulator({ numItems: 6, ks: [1, 3] });
  acc.add(sA, i32([0]), i32([2, 5]));
  acc.add(sB, undefined, i32([5]));
  acc.add(sB, undefined, i32([]));
  const r = acc.result();
  t.equal(r.users, 2);
  t.equal(r.skipped, 1);
  const m = r.metrics;
  for (const name of ['precision', 'recall', 'ndcg', 'map', 'hr', 'arhr']) t.equal(m[`${name}@1`], 0.5, `${name}@1 = (0 + 1) / 2`);
  t.ok(near(m['precision@3'], 1 / 3)); // (1/3 + 1/3) / 2
  t.equal(m['recall@3'], 0.75); // (1/2 + 1) / 2
  t.ok(near(m['ndcg@3'], (ndcgA3 + 1) / 2));
  t.ok(near(m['ndcg@3'], 0.693426, 1e-6));
  t.equal(m['map@3'], 0.625); // (0.25 + 1) / 2
  t.equal(m['hr@3'], 1);
  t.equal(m['arhr@3'], 0.75); // (1/2 + 1) / 2
  t.equal(m.mrr, 0.75); // (1/2 + 1) / 2
  t.equal(m['coverage@1'], 2 / 6); // items 1 (A) and 5 (B) at position 0
  t.equal(m['coverage@3'], 5 / 6); // A {1,2,3} ∪ B {5,4,3}
  t.same(
    Object.keys(m).sort(),
    ['arhr@1', 'arhr@3', 'coverage@1', 'coverage@3', 'hr@1', 'hr@3', 'map@1', 'map@3', 'mrr', 'ndcg@1', 'ndcg@3', 'precision@1', 'precision@3', 'recall@1', 'recall@3'].sort(),
  );
});

t.test('MRR looks beyond the largest K; default ks', async (t) => {
  // Relevant item 3 ranks 4th: arhr@1 = 0 but MRR = 1/4.
  const acc = new RankingAccumulator({ numItems: 6, ks: [1] });
  acc.add(sA, undefined, i32([3]));
  t.equal(acc.result().metrics['arhr@1'], 0);
  t.equal(acc.result().metrics.mrr, 0.25);
  const def = new RankingAccumulator({ numItems: 6 });
  t.same(def.ks, [5, 10, 20, 50]);
  t.ok(Number.isNaN(def.result().metrics['ndcg@10']), 'no users: NaN');
});

t.test('K larger than the catalogue, ties, graded', async (t) => {
  // 3 items, K = 5: top = [0, 1, 2]; relevant {2} at rank 3.
  // P@5 = 1/5, R@5 = 1/min(5,1) = 1, NDCG@5 = (1/log2 4)/1 = 0.5, HR = 1, coverage@5 = 3/3.
  const acc = new RankingAccumulator({ numItems: 3, ks: [5] });
  acc.add(f32([0.3, 0.2, 0.1]), undefined, i32([2]));
  const m = acc.result().metrics;
  t.equal(m['precision@5'], 1 / 5);
  t.equal(m['recall@5'], 1);
  t.equal(m['ndcg@5'], 0.5);
  t.equal(m['coverage@5'], 1);
  // All scores tied: the ranking is by id, so relevant item 1 is rank 2 → MRR 1/2.
  const tied = new RankingAccumulator({ numItems: 4, ks: [1] });
  tied.add(f32([1, 1, 1, 1]), undefined, i32([1]));
  t.equal(tied.result().metrics.mrr, 0.5);
  // Graded: item 4 grade 0 (not relevant), item 2 grade 2. A's ranking [1, 2, 3, 4, 5]:
  // NDCG@3 = (2/log2 3) / 2 = 0.630930; recall@3 = 1/min(3,1) = 1.
  const g = new RankingAccumulator({ numItems: 6, ks: [3] });
  g.add(sA, i32([0]), i32([4, 2]), f32([0, 2]));
  t.ok(near(g.result().metrics['ndcg@3'], 1 / Math.log2(3)));
  t.equal(g.result().metrics['recall@3'], 1);
  g.add(sA, undefined, i32([4]), f32([0]));
  t.equal(g.skipped, 1, 'only grade-0 items → skipped');
});

t.test('addRows and merge equal adding one by one', async (t) => {
  const one = new RankingAccumulator({ numItems: 6, ks: [1, 3] });
  one.add(sA, i32([0]), i32([2, 5]));
  one.add(sB, undefined, i32([5]));
  const rows = new RankingAccumulator({ numItems: 6, ks: [1, 3] });
  const scores = new Float32Array(12);
  scores.set(sA, 0);
  scores.set(sB, 6);
  rows.addRows(scores, { offsets: i32([0, 1, 1]), items: i32([0]) }, { offsets: i32([0, 2, 3]), items: i32([2, 5, 5]) });
  t.same(rows.result(), one.result());
  const a = new RankingAccumulator({ numItems: 6, ks: [1, 3] });
  const b = new RankingAccumulator({ numItems: 6, ks: [1, 3] });
  a.add(sA, i32([0]), i32([2, 5]));
  b.add(sB, undefined, i32([5]));
  b.add(sB, undefined, i32([]));
  a.merge(b);
  t.same(a.result().metrics, one.result().metrics);
  t.equal(a.users, 2);
  t.equal(a.skipped, 1);
  t.throws(() => a.merge(new RankingAccumulator({ numItems: 7, ks: [1, 3] })), MetricsError);
  t.throws(() => rows.addRows(new Float32Array(5), undefined, { offsets: i32([0, 1]), items: i32([1]) }), MetricsError);
  t.throws(() => rows.addRows(scores, { offsets: i32([0]), items: i32([]) }, { offsets: i32([0, 1, 2]), items: i32([1, 1]) }), MetricsError);
});

t.test('RankingAccumulator rejects bad input', async (t) => {
  t.throws(() => new RankingAccumulator({ numItems: 0 }), MetricsError);
  t.throws(() => new RankingAccumulator({ numItems: 5, ks: [] }), MetricsError);
  t.throws(() => new RankingAccumulator({ numItems: 5, ks: [0] }), /K must be an integer >= 1/);
  const acc = new RankingAccumulator({ numItems: 6, ks: [1] });
  t.throws(() => acc.add(f32([1, 2]), undefined, i32([1])), /scores has 2 entries but the catalogue has 6/);
  t.throws(() => acc.add(sA, undefined, i32([6])), /relevant item 6 is outside/);
  t.throws(() => acc.add(sA, i32([-1]), i32([1])), /seen item -1/);
  t.throws(() => acc.add(sA, undefined, i32([1]), f32([1, 2])), /2 grades for 1 relevant/);
});

t.test('sampleNegatives: deterministic, unseen, distinct', async (t) => {
  const seen = i32([1, 2, 3, 50, 60]);
  const a = sampleNegatives(7, 10, seen, { numItems: 200, seed: 42 });
  t.equal(a.length, 99);
  t.same(a, sampleNegatives(7, 10, seen, { numItems: 200, seed: 42 }), 'same (seed, user) → same negatives');
  t.not(Array.from(a).join(), Array.from(sampleNegatives(8, 10, seen, { numItems: 200, seed: 42 })).join(), 'another user → other negatives');
  const set = new Set(a);
  t.equal(set.size, 99, 'distinct');
  for (const x of [10, ...seen]) t.notOk(set.has(x), `excludes ${x}`);
  // Dense case: 12 items, seen 0..4, held out 5 → only 6..11 available (6 < 2·5: enumerate).
  const d = sampleNegatives(0, 5, i32([0, 1, 2, 3, 4]), { numItems: 12, count: 5, seed: 1 });
  t.equal(new Set(d).size, 5);
  t.ok(Array.from(d).every((x) => x >= 6 && x <= 11));
  t.throws(() => sampleNegatives(0, 5, i32([0, 1, 2, 3, 4]), { numItems: 12, count: 7, seed: 1 }), /only 6 unseen items/);
  t.throws(() => sampleNegatives(0, 12, undefined, { numItems: 12, seed: 1 }), MetricsError);
  t.throws(() => sampleNegatives(0, 1, undefined, { numItems: 12, count: 0, seed: 1 }), MetricsError);
});

t.test('sampledRanking by hand (NCF HR and NDCG)', async (t) => {
  // Held-out item 10 scores 0.5; item 3 scores 0.9 (ahead), item 4 ties at 0.5 with a lower id
  // (ahead), item 5 scores 0.1 (behind) → rank 3.
  // HR@1 = 0, HR@3 = 1; NDCG@3 = 1/log2(3 + 1) = 0.5.
  const c = sampledCandidates(10, i32([3, 4, 5]));
  t.same(Array.from(c), [10, 3, 4, 5]);
  const r = sampledRanking(c, f32([0.5, 0.9, 0.5, 0.1]), [1, 3]);
  t.equal(r.rank, 3);
  t.same(r.metrics, { 'hr@1': 0, 'ndcg@1': 0, 'hr@3': 1, 'ndcg@3': 0.5 });
  const viaFn = sampledRanking(c, (items) => f32(Array.from(items, (i) => (i === 3 ? 0.9 : i === 5 ? 0.1 : 0.5))), [3]);
  t.equal(viaFn.rank, 3);
  t.equal(sampledRanking(c, new Float64Array([Number.NaN, Number.NaN, 0, 0])).rank, 4, 'NaN held-out ranks last');
  t.throws(() => sampledRanking(c, f32([1, 2])), MetricsError);
  t.throws(() => sampledRanking(i32([]), f32([])), MetricsError);
  t.throws(() => sampledRanking(c, f32([1, 2, 3, 4]), [0]), MetricsError);
});

t.test('SampledRankingAccumulator means', async (t) => {
  const acc = new SampledRankingAccumulator({ numItems: 300, seed: 3, ks: [1, 3] });
  const c1 = acc.candidates(0, 7, i32([1, 2]));
  t.equal(c1.length, 100);
  t.equal(c1[0], 7);
  // User 0: held-out scores highest → rank 1. User 1: two negatives above → rank 3.
  acc.add(c1, (items) => f32(Array.from(items, (i) => (i === 7 ? 1 : 0))));
  const c2 = acc.candidates(1, 8, undefined);
  const s2 = new Float32Array(100);
  s2[0] = 0.5;
  s2[1] = 0.9;
  s2[2] = 0.8;
  acc.add(c2, s2);
  // HR@1 = (1 + 0)/2, HR@3 = (1 + 1)/2, NDCG@1 = (1 + 0)/2, NDCG@3 = (1 + 1/log2 4)/2 = 0.75.
  t.same(acc.result(), { users: 2, metrics: { 'hr@1': 0.5, 'ndcg@1': 0.5, 'hr@3': 1, 'ndcg@3': 0.75 } });
  t.equal(acc.users, 2);
  t.ok(Number.isNaN(new SampledRankingAccumulator({ numItems: 300, seed: 3 }).result().metrics['hr@10']));
  t.throws(() => new SampledRankingAccumulator({ numItems: 1, seed: 3 }), MetricsError);
});
