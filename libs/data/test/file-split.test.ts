import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DataError, loadRatings, lowRankRatings, parseSplitSpec, resolveUserPath, splitBySpec, userCwd } from '../mod.ts';
import { tsxCommand } from '@actorflow/test-child';

t.test('resolveUserPath: relative to INIT_CWD when npm/nx set it, else the cwd; absolute paths unchanged', async (t) => {
  t.equal(resolveUserPath('data/x.csv', { INIT_CWD: '/home/u/proj' }), '/home/u/proj/data/x.csv');
  t.equal(resolveUserPath('../x.csv', { INIT_CWD: '/home/u/proj' }), '/home/u/x.csv');
  t.equal(resolveUserPath('/abs/x.csv', { INIT_CWD: '/home/u/proj' }), '/abs/x.csv');
  t.equal(resolveUserPath('x.csv', {}), resolve(process.cwd(), 'x.csv'));
  t.equal(userCwd({ INIT_CWD: '' }), process.cwd(), 'an empty INIT_CWD is ignored');
});

t.test('parseSplitSpec: every kind, checked without data', async (t) => {
  t.same(parseSplitSpec('random:0.2'), { kind: 'random', fraction: 0.2 });
  t.same(parseSplitSpec('random'), { kind: 'random', fraction: 0.1 });
  t.same(parseSplitSpec('fixed:50'), { kind: 'fixed', testSize: 50 });
  t.same(parseSplitSpec('user:5'), { kind: 'user', n: 5 });
  t.same(parseSplitSpec('user-fraction:0.3'), { kind: 'user-fraction', fraction: 0.3 });
  t.same(parseSplitSpec('loo'), { kind: 'loo' });
  t.same(parseSplitSpec('strong:0.1'), { kind: 'strong', heldOut: 0.1 });
  t.same(parseSplitSpec('file:data/ml-100k/u1.test'), { kind: 'file', path: 'data/ml-100k/u1.test' });
  t.same(parseSplitSpec('file:C:/x:y.csv'), { kind: 'file', path: 'C:/x:y.csv' }, 'everything after the first colon is the path');
  for (const [bad, msg] of [
    ['nope', /unknown split 'nope'.*file:PATH/],
    ['random:1.5', /between 0 and 1/],
    ['random:x', /not a number/],
    ['fixed', /needs a value/],
    ['fixed:2.5', /integer/],
    ['user:0', /integer ≥ 1/],
    ['loo:3', /takes no value/],
    ['strong:1.5', /fraction in \(0, 1\) or a whole number/],
    ['file:', /needs a path/],
  ] as const)
    t.throws(() => parseSplitSpec(bad), { name: 'DataError', message: msg }, bad);
});

t.test('splitBySpec: file: needs a loader; a dataset too small to split says so', async (t) => {
  const r = lowRankRatings({ users: 5, items: 5, perUser: 2, seed: 1 }).ratings;
  t.throws(() => splitBySpec(r, 'file:x.csv', 1), /reads a second file/);
  const one = { user: Int32Array.of(0), item: Int32Array.of(0), rating: Float32Array.of(3), length: 1 };
  t.throws(() => splitBySpec(one, 'random:0.1', 1), /1 rating\(s\): too few to split/);
  const two = { user: Int32Array.of(0, 1), item: Int32Array.of(0, 1), rating: Float32Array.of(3, 4), length: 2 };
  t.throws(() => splitBySpec(two, 'user:1', 1), { name: 'DataError', message: /too small for split 'user:1'.*2 training and 0 test/ });
  t.ok(DataError);
});

t.test('loadRatings with shared id maps: two files, one encoding, new test ids appended', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'file-split-'));
  writeFileSync(join(dir, 'u1.base'), '1\t10\t5\t100\n2\t20\t3\t101\n1\t20\t4\t102\n');
  writeFileSync(join(dir, 'u1.test'), '2\t10\t2\t103\n3\t30\t1\t104\n');
  const train = await loadRatings(join(dir, 'u1.base'));
  const test = await loadRatings(join(dir, 'u1.test'), { users: train.users, items: train.items });
  t.equal(test.users, train.users, 'the same map object');
  t.same(Array.from(test.ratings.user), [train.users.get(2), 2]);
  t.same(Array.from(test.ratings.item), [train.items.get(10), 2]);
  t.same(train.users.toJSON(), [1, 2, 3]);
  t.same(train.items.toJSON(), [10, 20, 30]);
});

t.test('loaders check ids (within int32) and ratings (within --rating-range) with file:line errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'file-split-'));
  const f = join(dir, 'u.data');
  writeFileSync(f, '1\t10\t5\t100\n3000000000\t20\t3\t101\n');
  await t.rejects(loadRatings(f), { name: 'ParseError', message: `${f}:2: user id '3000000000' is outside the 32-bit integer range` });
  writeFileSync(f, '1\t10\t5\t100\n2\t20\t7\t101\n');
  await t.rejects(loadRatings(f, { ratingRange: [1, 5] }), { message: `${f}:2: rating 7 is outside the rating range 1…5` });
  t.equal((await loadRatings(f)).ratings.length, 2, 'no range: any finite rating');
  t.equal((await loadRatings(f, { ratingRange: [1, 5], skipBadLines: true })).skipped, 1);
  await t.rejects(loadRatings(f, { ratingRange: [5, 1] }), /lo ≤ hi/);
  writeFileSync(f, '1\t10\tInfinity\t100\n');
  await t.rejects(loadRatings(f), { message: `${f}:1: rating 'Infinity' is not a number` });
});

t.test('data:describe resolves its file against INIT_CWD', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const dir = mkdtempSync(join(tmpdir(), 'file-split-'));
  writeFileSync(join(dir, 'u.data'), '1\t10\t5\t100\n2\t20\t3\t101\n');
  const cli = fileURLToPath(new URL('../src/cli/describe.ts', import.meta.url));
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const run = (arg: string) => (({ command, args }) => spawnSync(command, args, { encoding: 'utf8', timeout: 60_000, cwd, env: { ...process.env, INIT_CWD: dir } }))(tsxCommand(cli, [arg]));
  const ok = run('u.data');
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /2/);
  const bad = run('nope.data');
  t.not(bad.status, 0);
  t.match(bad.stderr, new RegExp(`no such file: ${join(dir, 'nope.data')}`));
});
