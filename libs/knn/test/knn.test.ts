import t from 'tap';
import { randomSplit, syntheticRatings, type Ratings } from '@actorflow/data';
import { KnnError, KnnModel, blockCosts, buildCsr, computeBlock, csrGet, mergeBlocks, pairSimilarity, planBlocks, prepareKnn, type SimilarityOptions } from '../mod.ts';

const near = (got: number, want: number, eps = 1e-5): boolean => Math.abs(got - want) < eps;

// The 4 × 5 matrix of every hand computation below (– = not rated):
//        i0 i1 i2 i3 i4
//   u0:   5  3  –  1  –      μ_u0 = 9/3 = 3
//   u1:   4  –  –  1  2      μ_u1 = 7/3
//   u2:   1  1  –  5  4      μ_u2 = 11/4
//   u3:   –  1  5  4  –      μ_u3 = 10/3
//  μ_i:  10/3 5/3 5 11/4 3   global mean = 37/13
function ratingsOf(rows: number[][]): Ratings {
  const user: number[] = [];
  const item: number[] = [];
  const rating: number[] = [];
  rows.forEach((r, u) =>
    r.forEach((v, i) => {
      if (v > 0) {
        user.push(u);
        item.push(i);
        rating.push(v);
      }
    }),
  );
  return { user: Int32Array.from(user), item: Int32Array.from(item), rating: Float32Array.from(rating), length: user.length };
}
const M = ratingsOf([
  [5, 3, 0, 1, 0],
  [4, 0, 0, 1, 2],
  [1, 1, 0, 5, 4],
  [0, 1, 5, 4, 0],
]);
const data = prepareKnn(M);
const opts = (o: Partial<SimilarityOptions>): SimilarityOptions => ({ kind: 'item', similarity: 'cosine', shrinkage: 0, ...o });

t.test('CSR and statistics', async (t) => {
  t.equal(data.numUsers, 4);
  t.equal(data.numItems, 5);
  t.same(Array.from(data.byItem.offsets), [0, 3, 6, 7, 11, 13]);
  t.same(Array.from(data.byItem.cols.subarray(9, 11)), [2, 3], 'users of i3 ascending');
  t.equal(csrGet(data.byUser, 2, 3), 5);
  t.ok(Number.isNaN(csrGet(data.byUser, 0, 2)));
  t.ok(Number.isNaN(csrGet(data.byUser, 9, 0)));
  t.ok(near(data.globalMean, 37 / 13));
  t.ok(near(data.itemMean[0], 10 / 3));
  t.ok(near(data.userMean[2], 11 / 4));
  // σ_i1: ratings 3, 1, 1 → deviations 4/3, −2/3, −2/3 → variance 24/27 → σ = 0.942809.
  t.ok(near(data.itemStd[1], Math.sqrt(24 / 27)));
  t.equal(data.itemStd[2], 1, 'one rating: σ taken as 1');
  t.throws(() => buildCsr(ratingsOf([[1, 1]]), 'user', 1, 1), /outside 1 users × 1 items/);
  const dup: Ratings = { user: Int32Array.of(0, 0), item: Int32Array.of(1, 1), rating: Float32Array.of(1, 2), length: 2 };
  t.throws(() => prepareKnn(dup), /rated item 1 more than once/);
  t.throws(() => prepareKnn({ user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0), length: 0 }), KnnError);
});

t.test('item-item similarities by hand (i0 vs i3, co-raters u0, u1, u2)', async (t) => {
  // Cosine: i0 = (5, 4, 1), i3 = (1, 1, 5); 14 / √(42·27) = 0.415740.
  const cos = pairSimilarity(data, opts({}), 0, 3);
  t.ok(near(cos.similarity, 14 / Math.sqrt(42 * 27)));
  t.equal(cos.support, 3);
  // Pearson (minus item means 10/3 and 11/4): i0 = (5/3, 2/3, −7/3), i3 = (−7/4, −7/4, 9/4);
  // dot = −112/12, |i0|² = 78/9, |i3|² = 179/16 → −0.947860.
  t.ok(near(pairSimilarity(data, opts({ similarity: 'pearson' }), 0, 3).similarity, -112 / 12 / Math.sqrt((78 / 9) * (179 / 16))));
  t.ok(near(pairSimilarity(data, opts({ similarity: 'pearson' }), 0, 3).similarity, -0.94786));
  // Adjusted cosine (minus user means 3, 7/3, 11/4): i0 = (2, 5/3, −7/4), i3 = (−2, −4/3, 9/4);
  // dot = −1463/144, |i0|² = 1417/144, |i3|² = 1561/144 → −0.983689.
  t.ok(near(pairSimilarity(data, opts({ similarity: 'adjusted-cosine' }), 0, 3).similarity, -1463 / Math.sqrt(1417 * 1561)));
  // i0 vs i2 share no rater: no similarity.
  t.ok(Number.isNaN(pairSimilarity(data, opts({}), 0, 2).similarity));
});

t.test('user-user similarities by hand (u0 vs u2, co-rated i0, i1, i3)', async (t) => {
  const u = (similarity: SimilarityOptions['similarity']): number => pairSimilarity(data, opts({ kind: 'user', similarity }), 0, 2).similarity;
  // Cosine: (5, 3, 1)·(1, 1, 5) = 13; 13 / √(35·27) = 0.422890.
  t.ok(near(u('cosine'), 13 / Math.sqrt(35 * 27)));
  // Pearson (minus 3 and 11/4): (2, 0, −2)·(−7/4, −7/4, 9/4) = −8; |·|² = 8 and 179/16 → −0.845626.
  t.ok(near(u('pearson'), -8 / Math.sqrt(8 * (179 / 16))));
  // Adjusted cosine (minus item means 10/3, 5/3, 11/4): (5/3, 4/3, −7/4)·(−7/3, −2/3, 9/4)
  // = −35/9 − 8/9 − 63/16 = −1255/144; |·|² = 1097/144 and 1577/144 → −0.954167.
  t.ok(near(u('adjusted-cosine'), -1255 / Math.sqrt(1097 * 1577)));
});

t.test('shrinkage and minSupport', async (t) => {
  // n = 3 co-raters, λ = 2: 0.415740 · 3/5 = 0.249444.
  t.ok(near(pairSimilarity(data, opts({ shrinkage: 2 }), 0, 3).similarity, (14 / Math.sqrt(42 * 27)) * (3 / 5)));
  // Default λ = 100: · 3/103.
  t.ok(near(pairSimilarity(data, { kind: 'item', similarity: 'cosine' }, 0, 3).similarity, (14 / Math.sqrt(42 * 27)) * (3 / 103)));
  t.ok(Number.isNaN(pairSimilarity(data, opts({ minSupport: 4 }), 0, 3).similarity));
  t.throws(() => pairSimilarity(data, opts({ shrinkage: -1 }), 0, 3), /shrinkage must be/);
  t.throws(() => pairSimilarity(data, opts({ minSupport: 0 }), 0, 3), /minSupport/);
  t.throws(() => pairSimilarity(data, opts({ kMax: 0 }), 0, 3), /kMax/);
  t.throws(() => pairSimilarity(data, { kind: 'x' as 'item', similarity: 'cosine' }, 0, 3), /kind must be/);
  t.throws(() => pairSimilarity(data, { kind: 'item', similarity: 'x' as 'cosine' }, 0, 3), /similarity must be/);
  t.throws(() => pairSimilarity(data, opts({}), 0, 5), KnnError);
});

t.test('blocks: neighbour lists equal pair similarities, and blocked equals all at once', async (t) => {
  for (const kind of ['item', 'user'] as const) {
    for (const similarity of ['cosine', 'pearson', 'adjusted-cosine'] as const) {
      const o = opts({ kind, similarity, keepNegative: true, shrinkage: 1 });
      const n = kind === 'item' ? 5 : 4;
      const whole = mergeBlocks([computeBlock(data, o, { from: 0, to: n })], n);
      const parts = planBlocks(n, 3).map((b) => computeBlock(data, o, b));
      const merged = mergeBlocks(parts.reverse(), n);
      t.same(merged, whole, `${kind} ${similarity}: 3 blocks = 1 block`);
      for (let a = 0; a < n; a++) {
        for (let p = whole.offsets[a]; p < whole.offsets[a + 1]; p++) {
          const want = pairSimilarity(data, o, a, whole.neighbors[p]);
          if (!near(whole.sims[p], want.similarity) || whole.support[p] !== want.support) t.fail(`${kind} ${similarity} ${a}→${whole.neighbors[p]}`);
          if (p > whole.offsets[a]) t.ok(whole.sims[p - 1] >= whole.sims[p], 'best first');
        }
      }
    }
  }
  // Default keeps only positive similarities; kMax truncates. Cosine neighbours of i0:
  // i1 0.992278 (5,1)·(3,1)/√(26·10), i4 0.650791 (4,1)·(2,4)/√(17·20), i3 0.415740.
  const pos = computeBlock(data, opts({ kMax: 2 }), { from: 0, to: 1 });
  t.same(Array.from(pos.neighbors), [1, 4]);
  t.ok(near(pos.sims[0], 16 / Math.sqrt(260)));
  const pear = computeBlock(data, opts({ similarity: 'pearson' }), { from: 0, to: 5 });
  t.ok(Array.from(pear.sims).every((s) => s > 0));
});

t.test('planBlocks and mergeBlocks', async (t) => {
  t.same(planBlocks(10, 3), [
    { index: 0, from: 0, to: 3 },
    { index: 1, from: 3, to: 6 },
    { index: 2, from: 6, to: 10 },
  ]);
  t.equal(planBlocks(2, 5).length, 2, 'never empty blocks');
  t.same(planBlocks(0, 2), []);
  // Cost-balanced: one heavy row gets its own block.
  t.same(
    planBlocks(4, 2, [10, 1, 1, 1]).map((b) => [b.from, b.to]),
    [
      [0, 1],
      [1, 4],
    ],
  );
  const costs = blockCosts(data, 'item');
  // i0's raters u0, u1, u2 rated 3 + 3 + 4 items.
  t.equal(costs[0], 10);
  const plan = planBlocks(5, 2, costs);
  t.equal(plan[plan.length - 1].to, 5);
  t.throws(() => planBlocks(3, 0), KnnError);
  t.throws(() => planBlocks(-1, 1), KnnError);
  t.throws(() => planBlocks(3, 2, [1]), KnnError);
  const o = opts({});
  const a = computeBlock(data, o, { from: 0, to: 2 });
  const b = computeBlock(data, o, { from: 2, to: 5 });
  t.throws(() => mergeBlocks([a], 5), /cover rows 0…1 but there are 5/);
  t.throws(() => mergeBlocks([a, a, b], 5), /covered twice/);
  t.throws(() => mergeBlocks([b], 5), /missing/);
  t.throws(() => mergeBlocks([a, computeBlock(data, { ...o, kMax: 3 }, { from: 2, to: 5 })], 5), /different kMax/);
  t.throws(() => computeBlock(data, o, { from: 3, to: 6 }), /not inside the 5 items/);
});

t.test('prediction formula by hand: item-based (u3, i0)', async (t) => {
  // Neighbours of i0: i1 0.992278, i4 0.650791, i3 0.415740. u3 rated i1 = 1 and i3 = 4, not i4,
  // so with k = 2 the neighbours used are i1 and i3.
  const s1 = 16 / Math.sqrt(260);
  const s3 = 14 / Math.sqrt(42 * 27);
  const fit = (normalize: 'none' | 'mean' | 'zscore'): KnnModel => KnnModel.fit(M, { kind: 'item', similarity: 'cosine', shrinkage: 0, normalize, k: 2, kMax: 4 });
  // none: (0.992278·1 + 0.415740·4) / (0.992278 + 0.415740) = 2.655238 / 1.408018 = 1.885797.
  t.ok(near(fit('none').predict(3, 0), (s1 * 1 + s3 * 4) / (s1 + s3)));
  t.ok(near(fit('none').predict(3, 0), 1.885797));
  t.ok(near(fit('none').predict(3, 0, 1), 1), 'k = 1: only i1');
  // mean: 10/3 + (0.992278·(1 − 5/3) + 0.415740·(4 − 11/4)) / 1.408018 = 3.333333 − 0.100744 = 3.232589.
  t.ok(near(fit('mean').predict(3, 0), 10 / 3 + (s1 * (1 - 5 / 3) + s3 * (4 - 11 / 4)) / (s1 + s3)));
  // zscore: σ_i0 = √(78/27), σ_i1 = √(24/27), σ_i3 = √(12.75/4):
  // 10/3 + σ_i0 · (s1·(1 − 5/3)/σ_i1 + s3·(4 − 11/4)/σ_i3) / (s1 + s3).
  const z = 10 / 3 + (Math.sqrt(78 / 27) * (s1 * (-2 / 3 / Math.sqrt(24 / 27)) + s3 * (1.25 / Math.sqrt(12.75 / 4)))) / (s1 + s3);
  t.ok(near(fit('zscore').predict(3, 0), z));
  const m = fit('none');
  t.same(Array.from(m.predictBatch(Int32Array.of(3, 3), Int32Array.of(0, 0), 1)), [1, 1]);
  t.throws(() => m.predictBatch(Int32Array.of(1), Int32Array.of()), KnnError);
  t.throws(() => m.predict(0, 0, 5), /k must be an integer in 1…kMax \(4\)/);
  const clipped = KnnModel.fit(M, { kind: 'item', similarity: 'cosine', shrinkage: 0, normalize: 'none', k: 2, kMax: 4, clip: [2, 5] });
  t.equal(clipped.predict(3, 0), 2);
});

t.test('prediction by hand: user-based (u0, i4)', async (t) => {
  // Cosine neighbours of u0 who rated i4: u1 (co-rated i0, i3: (5,1)·(4,1)/√(26·17) = 21/√442)
  // and u2 (13/√945). none, k = 2: (0.998868·2 + 0.422890·4) / (0.998868 + 0.422890).
  const m = KnnModel.fit(M, { kind: 'user', similarity: 'cosine', shrinkage: 0, normalize: 'none', k: 2, kMax: 3 });
  const a = 21 / Math.sqrt(442);
  const b = 13 / Math.sqrt(945);
  t.ok(near(m.predict(0, 4), (a * 2 + b * 4) / (a + b)));
  // mean: μ_u0 + Σ s (r_v,i4 − μ_v) / Σ s = 3 + (a·(2 − 7/3) + b·(4 − 11/4)) / (a + b).
  const mm = KnnModel.fit(M, { kind: 'user', similarity: 'cosine', shrinkage: 0, k: 2, kMax: 3 });
  t.ok(near(mm.predict(0, 4), 3 + (a * (2 - 7 / 3) + b * (4 - 11 / 4)) / (a + b)));
});

t.test('fallbacks: no neighbours, unknown ids', async (t) => {
  // One more user (u4) and item (i5) that have no ratings.
  const fit = { numUsers: 5, numItems: 6 };
  const item = KnnModel.fit(M, { kind: 'item', similarity: 'cosine', k: 2, kMax: 4 }, fit);
  t.ok(near(item.predict(4, 0), 10 / 3), 'unknown user → item mean');
  t.ok(near(item.predict(0, 5), 3), 'unknown item → user mean');
  t.ok(near(item.predict(4, 5), 37 / 13), 'both unknown → global mean');
  t.ok(near(item.predict(99, -1), 37 / 13), 'out-of-range ids → global mean');
  const user = KnnModel.fit(M, { kind: 'user', similarity: 'cosine', k: 2, kMax: 4 }, fit);
  t.ok(near(user.predict(0, 5), 3), 'user-based: user mean first');
  t.ok(near(user.predict(4, 0), 10 / 3), 'then item mean');
  t.ok(near(user.predict(4, 5), 37 / 13));
  // i2 is rated by u3 only, and Pearson(u0, u3) < 0 (co-rated i1, i3: (0, −2)·(−7/3, 2/3) = −4/3),
  // so u0 has no kept neighbour who rated i2 → μ_u0 = 3.
  const pearson = KnnModel.fit(M, { kind: 'user', similarity: 'pearson', k: 2, kMax: 4 });
  t.ok(near(pearson.predict(0, 2), 3));
  t.throws(() => new KnnModel(prepareKnn(M), { kind: 'user', similarity: 'cosine', k: 2 }, item.neighbours), /neighbour lists have 6 rows but the data has 4 users/);
  t.throws(() => KnnModel.fit(M, { kind: 'item', similarity: 'cosine', normalize: 'x' as 'mean' }), /normalize must be/);
  t.throws(() => KnnModel.fit(M, { kind: 'item', similarity: 'cosine', clip: [5, 1] }), /clip/);
});

t.test('scoreItems: item-based sums and ratings, user-based', async (t) => {
  const m = KnnModel.fit(M, { kind: 'item', similarity: 'cosine', shrinkage: 0, normalize: 'none', k: 2, kMax: 4 });
  // History {i1: 1, i3: 4} (u3 without i2). i0's first 2 neighbours in the history: i1, i3.
  const h = { items: Int32Array.of(1, 3), values: Float32Array.of(1, 4) };
  const sum = m.scoreItems(h);
  const s1 = 16 / Math.sqrt(260);
  const s3 = 14 / Math.sqrt(42 * 27);
  t.ok(near(sum[0], s1 + s3));
  const rating = m.scoreItems(h, { mode: 'rating', user: 3 });
  t.ok(near(rating[0], m.predict(3, 0)), 'rating mode = predict');
  t.ok(near(m.scoreItems({ items: Int32Array.of(1, 3) })[0], s1 + s3), 'implicit history');
  t.throws(() => m.scoreItems({ items: Int32Array.of(9) }), KnnError);
  t.throws(() => m.scoreItems({ items: Int32Array.of(1), values: Float32Array.of() }), KnnError);
  t.throws(() => m.scoreItems(h, { mode: 'x' as 'sum' }), KnnError);
  const u = KnnModel.fit(M, { kind: 'user', similarity: 'cosine', shrinkage: 0, normalize: 'none', k: 2, kMax: 3 });
  const us = u.scoreItems({ items: new Int32Array(0) }, { user: 0, mode: 'rating' });
  t.ok(near(us[4], u.predict(0, 4)));
  t.throws(() => u.scoreItems({ items: new Int32Array(0) }), /pass options.user/);
  const fold = KnnModel.fit(M, { kind: 'item', similarity: 'cosine', k: 2, kMax: 4 }, { numItems: 6 });
  t.ok(near(fold.scoreItems({ items: Int32Array.of(0), values: Float32Array.of(4) }, { mode: 'rating' })[5], 4), 'no neighbours, unknown item and user → history mean');
});

t.test('sweepK equals predictions at each k', async (t) => {
  const m = KnnModel.fit(M, { kind: 'item', similarity: 'pearson', shrinkage: 1, k: 1, kMax: 4 });
  const test = ratingsOf([
    [0, 0, 2, 0, 3],
    [3, 2, 0, 0, 0],
  ]);
  const sweep = m.sweepK(test, [3, 1, 2]);
  t.same(
    sweep.map((p) => p.k),
    [3, 1, 2],
  );
  for (const p of sweep) {
    const pred = m.predictBatch(test.user, test.item, p.k);
    let se = 0;
    let ae = 0;
    for (let r = 0; r < test.length; r++) {
      se += (pred[r] - test.rating[r]) ** 2;
      ae += Math.abs(pred[r] - test.rating[r]);
    }
    t.ok(near(p.rmse, Math.sqrt(se / test.length)), `rmse k=${p.k}`);
    t.ok(near(p.mae, ae / test.length), `mae k=${p.k}`);
  }
  t.throws(() => m.sweepK(test, []), KnnError);
  t.throws(() => m.sweepK(test, [5]), KnnError);
});

t.test('synthetic low-rank data: item-kNN clearly beats the global mean', async (t) => {
  const s = syntheticRatings('tiny', 7);
  const { train, test } = randomSplit(s.ratings, { fraction: 0.1, seed: 1 });
  let mean = 0;
  for (let i = 0; i < train.length; i++) mean += train.rating[i];
  mean /= train.length;
  let se = 0;
  for (let i = 0; i < test.length; i++) se += (test.rating[i] - mean) ** 2;
  const baseline = Math.sqrt(se / test.length);
  const dims = { numUsers: s.numUsers, numItems: s.numItems };
  const item = KnnModel.fit(train, { kind: 'item', similarity: 'adjusted-cosine', normalize: 'zscore' }, { ...dims, blocks: 4 });
  const [r40] = item.sweepK(test, [40]);
  t.ok(r40.rmse < 0.93 * baseline, `item-kNN RMSE ${r40.rmse.toFixed(4)} vs global mean ${baseline.toFixed(4)}`);
  const user = KnnModel.fit(train, { kind: 'user', similarity: 'pearson', normalize: 'mean' }, dims);
  t.ok(user.sweepK(test, [40])[0].rmse < 0.95 * baseline, 'user-kNN too');
});
