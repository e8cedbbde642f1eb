import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadJobDataset } from '../mod.ts';

t.test('loadJobDataset with file:PATH: the test file, ids encoded jointly, test-only ids get rows, rating range from training', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feed-file-split-'));
  writeFileSync(join(dir, 'u1.base'), '1\t10\t5\t100\n2\t20\t3\t101\n1\t20\t4\t102\n2\t30\t2\t103\n');
  writeFileSync(join(dir, 'u1.test'), '2\t10\t1\t104\n3\t40\t5\t105\n');
  const ds = await loadJobDataset({ source: join(dir, 'u1.base'), split: `file:${join(dir, 'u1.test')}`, seed: 1 });
  t.equal(ds.train.length, 4, 'every training line is training');
  t.equal(ds.test.length, 2, 'every test line is test');
  t.equal(ds.numUsers, 3, 'user 3 is only in the test file but has an index');
  t.equal(ds.numItems, 4);
  t.same(ds.users?.toJSON(), [1, 2, 3]);
  t.same(ds.items?.toJSON(), [10, 20, 30, 40]);
  t.equal(ds.test.user[0], ds.users?.get(2), 'a shared id maps to the training index');
  t.equal(ds.test.item[0], ds.items?.get(10));
  t.equal(ds.globalMean, 3.5, 'the mean of the training ratings only');
  t.same(ds.ratingRange, [2, 5], 'the range of the training ratings');
  const trainPairs = new Set(Array.from({ length: 4 }, (_, i) => `${ds.train.user[i]}:${ds.train.item[i]}`));
  for (let i = 0; i < ds.test.length; i++) t.notOk(trainPairs.has(`${ds.test.user[i]}:${ds.test.item[i]}`), 'no rating on both sides');
});

t.test('loadJobDataset: relative paths against INIT_CWD; a missing test file names the resolved path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feed-file-split-'));
  writeFileSync(join(dir, 'u1.base'), '1\t10\t5\t100\n2\t20\t3\t101\n');
  const before = process.env.INIT_CWD;
  process.env.INIT_CWD = dir;
  t.teardown(() => {
    if (before === undefined) delete process.env.INIT_CWD;
    else process.env.INIT_CWD = before;
  });
  await t.rejects(loadJobDataset({ source: 'u1.base', split: 'file:u1.test', seed: 1 }), { message: `no such file: ${join(dir, 'u1.test')}` });
  const ds = await loadJobDataset({ source: 'u1.base', split: 'fixed:1', seed: 1 });
  t.equal(ds.train.length + ds.test.length, 2);
});

t.test('loadJobDataset: implicit threshold and min-count filters before the split; data option parsing', async (t) => {
  const { parseDataOptions, dataOptionFlags } = await import('../mod.ts');
  const dir = mkdtempSync(join(tmpdir(), 'feed-file-split-'));
  // user 1: 3 ratings, user 2: 3, user 3: 1 (dropped by min-user-ratings 2); item 40 only rated by user 3.
  writeFileSync(join(dir, 'u.data'), '1\t10\t5\t1\n1\t20\t4\t2\n1\t30\t2\t3\n2\t10\t4\t4\n2\t20\t1\t5\n2\t30\t5\t6\n3\t40\t5\t7\n');
  const f = await loadJobDataset({ source: join(dir, 'u.data'), split: 'fixed:2', seed: 1, minUserRatings: 2 });
  t.equal(f.train.length + f.test.length, 6);
  t.equal(f.numUsers, 2);
  t.equal(f.numItems, 3);
  t.same(f.users?.toJSON(), [1, 2]);
  const imp = await loadJobDataset({ source: join(dir, 'u.data'), split: 'fixed:1', seed: 1, implicitThreshold: 4 });
  t.equal(imp.train.length + imp.test.length, 5, 'ratings ≥ 4 are kept');
  t.ok(Array.from(imp.train.rating).every((r) => r === 1));
  await t.rejects(loadJobDataset({ source: join(dir, 'u.data'), split: 'fixed:1', seed: 1, ratingRange: [1, 4] }), { message: `${join(dir, 'u.data')}:1: rating 5 is outside the rating range 1…4` });
  await t.rejects(loadJobDataset({ source: join(dir, 'u.data'), split: `file:${join(dir, 'u.data')}`, seed: 1, minItemRatings: 2 }), /do not apply to a file: split/);
  const opts = parseDataOptions({ 'rating-range': '1,5', 'min-user-ratings': '5', 'implicit-threshold': '3.5' });
  t.same(opts, { ratingRange: [1, 5], minUserRatings: 5, implicitThreshold: 3.5 });
  t.same(dataOptionFlags(opts), ['--rating-range', '1,5', '--min-user-ratings', '5', '--implicit-threshold', '3.5']);
  t.throws(() => parseDataOptions({ 'rating-range': '5,1' }), /LO ≤ HI/);
  t.throws(() => parseDataOptions({ 'rating-range': '1' }), /LO,HI/);
  t.throws(() => parseDataOptions({ 'min-item-ratings': '0' }), /positive integer/);
  t.throws(() => parseDataOptions({ 'implicit-threshold': 'x' }), /must be a number/);
});
