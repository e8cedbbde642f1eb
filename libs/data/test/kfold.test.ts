import t from 'tap';
import { DataError, carveValidation, kFoldSplit, lowRankRatings, parseSplitSpec, splitBySpec, type Ratings } from '../mod.ts';

const data = lowRankRatings({ users: 120, items: 90, perUser: 20, seed: 7 }).ratings;
const keys = (r: Ratings): string[] => Array.from({ length: r.length }, (_, i) => `${r.user[i]}:${r.item[i]}:${r.rating[i]}`);

t.test('kfold: seeded, no rating on both sides, every rating tested exactly once over the K folds', async (t) => {
  const K = 5;
  const tested: string[] = [];
  for (let fold = 0; fold < K; fold++) {
    const s = kFoldSplit(data, { k: K, fold, seed: 3 });
    t.equal(s.train.length + s.test.length, data.length, `fold ${fold}: sizes add up`);
    t.ok(Math.abs(s.test.length - data.length / K) <= 1, `fold ${fold}: ${s.test.length} test ratings, a K-th`);
    const train = new Set(keys(s.train));
    t.ok(
      keys(s.test).every((k) => !train.has(k)),
      `fold ${fold}: no rating on both sides`,
    );
    t.same(keys(splitBySpec(data, `kfold:${K}/${fold}`, 3).test), keys(s.test), `fold ${fold}: the spec kfold:${K}/${fold} is the same split`);
    tested.push(...keys(s.test));
  }
  t.equal(new Set(tested).size, data.length, 'every rating is in exactly one test fold');
  t.equal(tested.length, data.length);
  t.same(keys(kFoldSplit(data, { k: K, fold: 2, seed: 3 }).test), keys(kFoldSplit(data, { k: K, fold: 2, seed: 3 }).test), 'deterministic');
  t.not(keys(kFoldSplit(data, { k: K, fold: 2, seed: 4 }).test).join(), keys(kFoldSplit(data, { k: K, fold: 2, seed: 3 }).test).join(), 'another seed, other folds');
  t.same(keys(splitBySpec(data, 'kfold:5', 3).test), keys(kFoldSplit(data, { k: 5, fold: 0, seed: 3 }).test), 'kfold:K is fold 0');
});

t.test('kfold specs are checked without data', async (t) => {
  t.same(parseSplitSpec('kfold:5'), { kind: 'kfold', k: 5, fold: 0 });
  t.same(parseSplitSpec('kfold:5/4'), { kind: 'kfold', k: 5, fold: 4 });
  for (const [spec, msg] of [
    ['kfold', /kfold:K or kfold:K\/I/],
    ['kfold:', /kfold:K or kfold:K\/I/],
    ['kfold:x', /kfold:K or kfold:K\/I/],
    ['kfold:1', /K must be at least 2/],
    ['kfold:5/5', /the fold must be 0…4/],
    ['kfold:5/-1', /kfold:K or kfold:K\/I/],
    ['kfold:2.5', /kfold:K or kfold:K\/I/],
  ] as const) {
    t.throws(() => parseSplitSpec(spec), DataError, spec);
    t.throws(() => parseSplitSpec(spec), msg, spec);
  }
  t.throws(() => kFoldSplit(data, { k: 1, fold: 0, seed: 1 }), /K must be an integer ≥ 2/);
  t.throws(() => kFoldSplit(data, { k: 3, fold: 3, seed: 1 }), /fold must be 0…2/);
});

t.test('a validation set carved from training: disjoint, seeded apart from the test split', async (t) => {
  const s = kFoldSplit(data, { k: 5, fold: 1, seed: 3 });
  const v = carveValidation(s.train, { fraction: 0.1, seed: 3 });
  t.equal(v.test.length, Math.round(s.train.length * 0.1));
  t.equal(v.train.length + v.test.length, s.train.length);
  const train = new Set(keys(v.train));
  t.ok(
    keys(v.test).every((k) => !train.has(k)),
    'no validation rating is trained on',
  );
  const test = new Set(keys(s.test));
  t.ok(
    keys(v.test).every((k) => !test.has(k)),
    'nor is one a test rating',
  );
  t.throws(() => carveValidation(s.train, { fraction: 1.5, seed: 3 }), /between 0 and 1/);
  t.throws(
    () => carveValidation({ ...s.train, length: 3, user: s.train.user.slice(0, 3), item: s.train.item.slice(0, 3), rating: s.train.rating.slice(0, 3) }, { fraction: 0.01, seed: 3 }),
    /leaves 0 validation/,
  );
});
