// Every path a user gives is resolved against the folder the user ran the command in (INIT_CWD
// under npm/nx), whatever folder the app itself runs in (npm runs each in its own): the job's
// --dataset / --split file: / --out, recommend's and export's --model-dir / --out, data:describe's
// file, plan's --blueprint / --out. Each app runs here as npm would run it: cwd = its own folder,
// INIT_CWD = a folder elsewhere holding the relative paths.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

const root = resolve(import.meta.dirname, '..');
const user = mkdtempSync(join(tmpdir(), 'datasets-paths-'));
const env = { ...process.env, NATS_URL: '', INIT_CWD: user };
const run = (appDir: string, script: string, args: string[], timeout = 600_000) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, appDir, script), ...args], { cwd: join(root, appDir), encoding: 'utf8', timeout, env });

// A small ratings file (user,item,rating) in the user's folder: 40 users × 12 items.
mkdirSync(join(user, 'data'));
const lines = ['userId,movieId,rating,timestamp'];
for (let u = 1; u <= 40; u++) for (let i = 1; i <= 12; i++) if ((u * 7 + i * 3) % 4 !== 0) lines.push(`${u},${100 + i},${1 + ((u + i) % 5)},${978300000 + u * 100 + i}`);
writeFileSync(join(user, 'data', 'x.csv'), `${lines.join('\n')}\n`);

t.test('data:describe data/x.csv (libs/data runs it in libs/data)', async (t) => {
  const r = run('libs/data', 'src/cli/describe.ts', ['data/x.csv'], 120_000);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /users\s+40\n/, 'describes the file: 40 users');
  t.match(r.stdout, /ratings\s+360\n/, '360 ratings');
  const bad = run('libs/data', 'src/cli/describe.ts', ['data/missing.csv'], 120_000);
  t.not(bad.status, 0);
  t.match(bad.stderr, join(user, 'data', 'missing.csv'), 'a missing file is named resolved');
});

t.test('job --dataset data/x.csv --out out/j, then recommend and export with --model-dir out/j/model', async (t) => {
  const job = run('apps/job', 'main.ts', [
    ...['--job', 'paths', '--dataset', 'data/x.csv', '--out', 'out/j', '--epochs', '1', '--batch-size', '64'],
    ...['--trainers', '1', '--data-shards', '1', '--ps-shards', '1', '--eval-every', '0', '--backend', 'cpu'],
  ]);
  t.equal(job.status, 0, job.stderr.slice(-3000));
  t.ok(existsSync(join(user, 'out', 'j', 'metrics.json')), '--out is under the user folder');
  const config = JSON.parse(readFileSync(join(user, 'out', 'j', 'model', 'config.json'), 'utf8')) as { dataset: { source: string } };
  t.equal(config.dataset.source, join(user, 'data', 'x.csv'), 'the model stores the dataset path absolute');

  const rec = run('apps/recommend', 'main.ts', ['--model-dir', 'out/j/model', '--user', '1', '--n', '3'], 120_000);
  t.equal(rec.status, 0, rec.stderr);
  t.match(rec.stdout, /\b1(0[1-9]|1[0-2])\b/, 'recommends items of the file (ids 101…112)');
  const missing = run('apps/recommend', 'main.ts', ['--model-dir', 'out/nope/model', '--user', '1'], 120_000);
  t.not(missing.status, 0);
  t.match(missing.stderr, join(user, 'out', 'nope', 'model'), 'a missing model dir is named resolved');

  const exp = run('apps/export', 'main.ts', ['--model-dir', 'out/j/model', '--out', 'out/web', '--backend', 'cpu'], 120_000);
  t.equal(exp.status, 0, exp.stderr);
  t.ok(existsSync(join(user, 'out', 'web', 'model.json')), 'export --out is under the user folder');
});

t.test('plan --blueprint bp.json --out plan.json (apps/plan)', async (t) => {
  copyFileSync(join(root, 'libs/cluster/test/fixtures/blueprint.json'), join(user, 'bp.json'));
  const r = run('apps/plan', 'main.ts', ['--blueprint', 'bp.json', '--use', 'cpus', '--model', 'mf', '--dataset', 'synthetic:tiny', '--out', 'plan.json'], 120_000);
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(join(user, 'plan.json')), 'plan --out is under the user folder');
});
