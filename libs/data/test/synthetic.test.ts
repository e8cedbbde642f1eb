import t from 'tap';
import { join } from 'node:path';
import { DataError, implicitClicks, loadRatings, lowRankRatings, syntheticRatings, writeRatingsCsv } from '../mod.ts';

t.test('low-rank ratings: shapes, no duplicate pairs, noise floor ≈ σ, deterministic, skewed', async (t) => {
  const s = lowRankRatings({ users: 1000, items: 500, perUser: 100, noise: 0.4, seed: 9 });
  t.ok(s.ratings.length > 80_000 && s.ratings.length < 120_000, `${s.ratings.length} ratings`);
  const pairs = new Set<number>();
  for (let i = 0; i < s.ratings.length; i++) pairs.add(s.ratings.user[i] * 1000 + s.ratings.item[i]);
  t.equal(pairs.size, s.ratings.length, 'no duplicate (user, item)');
  t.ok(Math.abs(s.truth.floorRmse - 0.4) < 0.01, `empirical floor ${s.truth.floorRmse}`);
  const again = lowRankRatings({ users: 1000, items: 500, perUser: 100, noise: 0.4, seed: 9 });
  t.same(again.ratings.rating.subarray(0, 100), s.ratings.rating.subarray(0, 100));
  const counts = new Int32Array(500);
  for (const i of s.ratings.item) counts[i]++;
  const sorted = [...counts].sort((a, b) => b - a);
  t.ok(sorted[0] > 5 * sorted[250], `popularity skew: top ${sorted[0]} vs median ${sorted[250]}`);
  t.throws(() => lowRankRatings({ users: 1, items: 2, perUser: 3, seed: 1 }), DataError);
});

t.test('clipping reports the empirical floor', async (t) => {
  const s = lowRankRatings({ users: 200, items: 100, perUser: 20, noise: 1, clip: [1, 5], seed: 2 });
  t.ok(s.ratings.rating.every((v) => v >= 1 && v <= 5));
  t.ok(s.truth.floorRmse < 1);
});

t.test('named sizes and implicit clicks', async (t) => {
  const tiny = syntheticRatings('tiny', 1);
  t.equal(tiny.numUsers, 100);
  t.ok(tiny.ratings.timestamp !== undefined);
  t.throws(() => syntheticRatings('huge' as 'tiny', 1), /unknown synthetic size/);
  const clicks = implicitClicks({ users: 50, items: 200, perUser: 10, seed: 1 });
  t.equal(clicks.ratings.length, 500);
  t.ok(clicks.ratings.rating.every((v) => v === 1));
});

t.test('writeRatingsCsv produces a file the ml-csv loader reads back', async (t) => {
  const dir = t.testdir({});
  const s = syntheticRatings('tiny', 3);
  const path = join(dir, 'ratings.csv');
  await writeRatingsCsv(s.ratings, path);
  const back = await loadRatings(path);
  t.equal(back.format, 'ml-csv');
  t.equal(back.ratings.length, s.ratings.length);
  t.equal(back.ratings.rating[5], s.ratings.rating[5]);
});
