// A predefined train/test pair (MovieLens u1.base / u1.test style) through a real job: relative
// paths resolved against the user's folder (INIT_CWD), ids encoded jointly (test-only users and
// items), the rating range stored with the model, and recommend clipping to it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { lowRankRatings } from '@actorflow/data';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'file-split-job-'));
const data = lowRankRatings({ users: 150, items: 100, perUser: 25, rank: 3, noise: 0.3, seed: 11 }).ratings;
const line = (i: number): string => `${data.user[i] + 1}\t${data.item[i] + 1}\t${Math.min(5, Math.max(1, Math.round(data.rating[i])))}\t${i}`;
const train: string[] = [];
const test: string[] = [];
for (let i = 0; i < data.length; i++) (i % 5 === 0 ? test : train).push(line(i));
// Ids only the test file has: a cold-start user and item.
test.push('9001\t1\t4\t0', '1\t9002\t3\t0');
writeFileSync(join(dir, 'u1.base'), `${train.join('\n')}\n`);
writeFileSync(join(dir, 'u1.test'), `${test.join('\n')}\n`);
const env = { ...process.env, NATS_URL: '', INIT_CWD: dir };
const node = (script: string, args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, script), ...args], { cwd: join(root, 'apps/job'), encoding: 'utf8', timeout: 240_000, env });

t.test("job --dataset u1.base --split file:u1.test, then recommend from the user's folder", async (t) => {
  const run = node('apps/job/main.ts', [
    '--job',
    'file-split',
    '--dataset',
    'u1.base',
    '--split',
    'file:u1.test',
    '--out',
    'run',
    '--trainers',
    '1',
    '--data-shards',
    '1',
    '--ps-shards',
    '1',
    '--epochs',
    '3',
    '--eval-every',
    '0',
  ]);
  t.equal(run.status, 0, run.stderr.slice(-2000));
  t.match(run.stdout, new RegExp(`data: 151 users, 101 items, ${train.length} train / ${test.length} test ratings`), 'every line of each file on its side, ids shared');
  const out = join(dir, 'run');
  const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { metrics: { rmse: number } };
  t.ok(metrics.metrics.rmse > 0 && metrics.metrics.rmse < 1.5, `test RMSE ${metrics.metrics.rmse}`);
  const configPath = join(out, 'model', 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as { dataset: { source: string; split: string }; ratingRange: number[] };
  t.equal(config.dataset.source, join(dir, 'u1.base'), 'stored absolute');
  t.equal(config.dataset.split, `file:${join(dir, 'u1.test')}`);
  t.same(config.ratingRange, [1, 5], "the training data's range");

  const rec = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/recommend/main.ts'), ...args], { cwd: join(root, 'apps/recommend'), encoding: 'utf8', timeout: 120_000, env });
  const top = rec(['--model-dir', 'run/model', '--user', '5', '--n', '20', '--json', '--backend', 'cpu']);
  t.equal(top.status, 0, top.stderr);
  const scores = (JSON.parse(top.stdout) as { score: number }[]).map((r) => r.score);
  t.ok(
    scores.every((s) => s >= 1 && s <= 5),
    `within 1…5: ${scores.join(' ')}`,
  );
  // recommend clips to the range in config.json: narrow it and every shown score moves into it.
  writeFileSync(configPath, JSON.stringify({ ...config, ratingRange: [1, 2] }));
  const narrow = rec(['--model-dir', 'run/model', '--user', '5', '--n', '20', '--json', '--backend', 'cpu']);
  t.equal(narrow.status, 0, narrow.stderr);
  const shown = (JSON.parse(narrow.stdout) as { score: number }[]).map((r) => r.score);
  t.ok(
    shown.every((s) => s >= 1 && s <= 2),
    `within 1…2: ${shown.join(' ')}`,
  );
  t.ok(
    scores.some((s) => s > 2),
    'the unclipped-to-2 scores were above 2, so the narrowing was visible',
  );
  const cold = rec(['--model-dir', 'run/model', '--user', '9001', '--n', '3', '--json', '--backend', 'cpu']);
  t.equal(cold.status, 0, `a user only in the test file is known: ${cold.stderr}`);
});
