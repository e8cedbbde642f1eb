import t from 'tap';
import fc from 'fast-check';
import { DataError, fixedSizeSplit, leaveOneOut, lowRankRatings, perUserFractionSplit, perUserHoldout, randomSplit, splitBySpec, strongGeneralization, type Ratings, type Split } from '../mod.ts';

const data = lowRankRatings({ users: 200, items: 150, perUser: 30, seed: 3, withTimestamps: true }).ratings;
const key = (r: Ratings, i: number): string => `${r.user[i]}:${r.item[i]}`;
const keys = (r: Ratings): string[] => Array.from({ length: r.length }, (_, i) => key(r, i));

function checkPartition(t: Tap.Test, s: Split, whole: Ratings): void {
  t.equal(s.train.length + s.test.length, whole.length, 'sizes add up');
  const train = new Set(keys(s.train));
  t.ok(
    keys(s.test).every((k) => !train.has(k)),
    'no rating on both sides',
  );
}

t.test('random fraction and fixed size', async (t) => {
  const s = randomSplit(data, { seed: 1 });
  checkPartition(t, s, data);
  t.equal(s.test.length, Math.round(data.length * 0.1));
  t.same(randomSplit(data, { seed: 1 }).test.user, s.test.user, 'deterministic');
  t.not(keys(randomSplit(data, { seed: 2 }).test).join(), keys(s.test).join(), 'seed matters');
  const f = fixedSizeSplit(data, { testSize: 123, seed: 1 });
  checkPartition(t, f, data);
  t.equal(f.test.length, 123);
  t.throws(() => fixedSizeSplit(data, { testSize: data.length + 1, seed: 1 }), DataError);
  t.throws(() => randomSplit(data, { fraction: 1.5, seed: 1 }), /between 0 and 1/);
});

t.test('per-user holdout keeps at least one rating in train', async (t) => {
  const s = perUserHoldout(data, { n: 10, seed: 4 });
  checkPartition(t, s, data);
  const count = (r: Ratings): Map<number, number> => {
    const m = new Map<number, number>();
    for (let i = 0; i < r.length; i++) m.set(r.user[i], (m.get(r.user[i]) ?? 0) + 1);
    return m;
  };
  const all = count(data);
  const test = count(s.test);
  const train = count(s.train);
  for (const [u, n] of all) {
    t.equal(test.get(u) ?? 0, Math.min(10, n - 1), `user ${u}`);
    t.ok((train.get(u) ?? 0) >= 1);
  }
  const pf = perUserFractionSplit(data, { fraction: 0.2, seed: 4 });
  checkPartition(t, pf, data);
});

t.test('leave-one-out takes each user latest rating', async (t) => {
  const s = leaveOneOut(data);
  checkPartition(t, s, data);
  const latest = new Map<number, number>();
  for (let i = 0; i < data.length; i++) {
    const u = data.user[i];
    const ts = data.timestamp?.[i] ?? 0;
    if ((latest.get(u) ?? -1) <= ts) latest.set(u, ts);
  }
  for (let i = 0; i < s.test.length; i++) t.equal(s.test.timestamp?.[i], latest.get(s.test.user[i]));
  t.throws(() => leaveOneOut({ ...data, timestamp: undefined }), /needs timestamps/);
});

t.test('strong generalisation holds out whole users, 80/20 fold-in/target', async (t) => {
  const s = strongGeneralization(data, { heldOut: 0.1, seed: 5 });
  t.equal(s.heldOutUsers.length, 20);
  const held = new Set(s.heldOutUsers);
  t.ok(
    [...s.train.user].every((u) => !held.has(u)),
    'train has no held-out user',
  );
  t.ok([...s.test.user].every((u) => held.has(u)) && [...s.foldIn.user].every((u) => held.has(u)));
  t.equal(s.train.length + s.foldIn.length + s.test.length, data.length);
  const ratio = s.foldIn.length / (s.foldIn.length + s.test.length);
  t.ok(ratio > 0.75 && ratio < 0.85, `fold-in ratio ${ratio}`);
  const fold = new Set(keys(s.foldIn));
  t.ok(keys(s.test).every((k) => !fold.has(k)));
  t.throws(() => strongGeneralization(data, { heldOut: 500, seed: 1 }), /held-out users/);
});

t.test('split specs', async (t) => {
  t.equal(splitBySpec(data, 'random:0.2', 1).test.length, Math.round(data.length * 0.2));
  t.equal(splitBySpec(data, 'fixed:7', 1).test.length, 7);
  t.ok(splitBySpec(data, 'user:2', 1).test.length > 0);
  t.ok(splitBySpec(data, 'user-fraction:0.3', 1).test.length > 0);
  t.equal(splitBySpec(data, 'loo', 1).test.length, 200);
  t.ok(splitBySpec(data, 'strong:0.1', 1).test.length > 0);
  t.throws(() => splitBySpec(data, 'nope', 1), /unknown split 'nope'/);
  t.throws(() => splitBySpec(data, 'random:x', 1), /not a number/);
  t.throws(() => splitBySpec(data, 'fixed', 1), /needs a value/);
});

t.test('property: random splits of random data are partitions', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.integer(), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (n, seed, fraction) => {
      const r: Ratings = { user: Int32Array.from({ length: n }, (_, i) => i % 7), item: Int32Array.from({ length: n }, (_, i) => i), rating: new Float32Array(n), length: n };
      const s = randomSplit(r, { seed, fraction });
      const test = new Set(s.test.item);
      return s.train.length + s.test.length === n && [...s.train.item].every((i) => !test.has(i));
    }),
  );
  t.pass();
});

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Tap {
    type Test = import('tap').Test;
  }
}
