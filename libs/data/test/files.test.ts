import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tsxCommand } from '@actorflow/test-child';
import { FormatError, IdMap, encodeIdx, loadBundledDigits, loadIdx, loadRatingsArrow, parseIdx, saveRatingsArrow, syntheticRatings, MNIST_PIXELS } from '../mod.ts';

const runCli = (cli: string, ...args: string[]) => {
  const cmd = tsxCommand(cli, args);
  return spawnSync(cmd.command, cmd.args, { encoding: 'utf8' });
};

const dir = t.testdir({});

t.test('Arrow files round-trip ratings, timestamps, id maps and provenance; other schemas are rejected', async (t) => {
  const s = syntheticRatings('tiny', 1);
  const users = new IdMap();
  for (let u = 0; u < s.numUsers; u++) users.encode(`u${u}`);
  const path = join(dir, 'tiny.arrow');
  saveRatingsArrow(path, { ratings: s.ratings, users, meta: { source: 'synthetic:tiny' } });
  const back = loadRatingsArrow(path);
  t.same(back.ratings.user, s.ratings.user);
  t.same(back.ratings.rating, s.ratings.rating);
  t.same(back.ratings.timestamp, s.ratings.timestamp);
  t.equal(back.users?.decode(3), 'u3');
  t.equal(back.items, undefined);
  t.same(back.meta, { source: 'synthetic:tiny' });
  const junk = join(dir, 'junk.arrow');
  writeFileSync(junk, 'not arrow');
  t.throws(() => loadRatingsArrow(junk), FormatError);
  t.throws(() => loadRatingsArrow(join(dir, 'missing.arrow')), /no such file/);
});

t.test('MNIST IDX: round trip (plain and gzipped), bad magic, size mismatch', async (t) => {
  const n = 3;
  const set = { pixels: Float32Array.from({ length: n * MNIST_PIXELS }, (_, i) => (i % 256) / 255), labels: new Int32Array([7, 2, 1]), n };
  const { images, labels } = encodeIdx(set);
  writeFileSync(join(dir, 'img.idx'), images);
  writeFileSync(join(dir, 'lbl.idx.gz'), gzipSync(labels));
  const back = loadIdx(join(dir, 'img.idx'), join(dir, 'lbl.idx.gz'));
  t.equal(back.n, 3);
  t.same(back.labels, set.labels);
  t.ok(Math.abs(back.pixels[300] - set.pixels[300]) < 1e-6);
  const bad = images.slice();
  bad[2] = 0x0d;
  t.throws(() => parseIdx(bad), /element type/);
  t.throws(() => parseIdx(images.subarray(0, 20)), /header promises/);
  t.throws(() => parseIdx(new Uint8Array([1, 0, 8, 1, 0, 0, 0, 0])), /bad IDX magic/);
  writeFileSync(join(dir, 'lbl2.idx'), encodeIdx({ ...set, n: 2, labels: new Int32Array([1, 2]), pixels: set.pixels.subarray(0, 2 * MNIST_PIXELS) }).labels);
  t.throws(() => loadIdx(join(dir, 'img.idx'), join(dir, 'lbl2.idx')), /3 images but .* 2 labels/);
});

t.test('bundled digits from the mnist package', async (t) => {
  const { train, test } = loadBundledDigits({ seed: 1 });
  t.ok(train.n > 5000, `${train.n} train digits`);
  t.ok(test.n > 1000, `${test.n} test digits`);
  t.equal(train.pixels.length, train.n * MNIST_PIXELS);
  t.same(new Set(test.labels).size, 10);
});

t.test('describe CLI prints the summary of a file and fails clearly on a missing one', async (t) => {
  const path = join(dir, 'u.data');
  writeFileSync(path, '1\t1\t5\t1\n1\t2\t3\t2\n2\t1\t4\t3\n');
  const cli = fileURLToPath(new URL('../src/cli/describe.ts', import.meta.url));
  const ok = runCli(cli, path);
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, /users\s+2/);
  t.match(ok.stdout, /mean\s+4\.0000/);
  const missing = runCli(cli, join(dir, 'nope'));
  t.equal(missing.status, 1);
  t.match(missing.stderr, /no such file/);
  const none = runCli(cli);
  t.equal(none.status, 2);
});

t.test('smoke CLI generates, splits and saves the synthetic dataset', async (t) => {
  const out = join(dir, 'smoke');
  const cli = fileURLToPath(new URL('../src/cli/smoke.ts', import.meta.url));
  const run = runCli(cli, '--size', 'tiny', '--out', out);
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /noise floor: the true low-rank model scores RMSE 0\.\d+/);
  t.equal(loadRatingsArrow(join(out, 'train.arrow')).meta?.source, 'synthetic:tiny');
  const bad = runCli(cli, '--size', 'huge');
  t.equal(bad.status, 2);
  t.match(bad.stderr, /unknown size 'huge'/);
});
