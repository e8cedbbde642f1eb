// K-fold cross-validation through real jobs: every bad fold/validation spec is refused before any
// process starts; `--folds all` runs each fold as a job and reports mean ± std like Surprise's
// cross_validate (a table on stdout and <out>/folds.json).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'datasets-kfold-'));
const env = { ...process.env, NATS_URL: '', INIT_CWD: dir };
const job = (args: string[], timeout = 600_000) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/job/main.ts'), ...args], { cwd: join(root, 'apps/job'), encoding: 'utf8', timeout, env });

t.test('bad fold, folds, validation and early-stop specs: exit 2 before anything starts', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--split', 'kfold:1'], /K must be at least 2/],
    [['--split', 'kfold:5', '--fold', '5'], /--fold must be an integer 0…4/],
    [['--split', 'kfold:5', '--fold', 'x'], /--fold must be an integer 0…4/],
    [['--split', 'random:0.1', '--fold', '1'], /--fold 1 needs --split kfold:K/],
    [['--folds', 'all'], /--folds all needs --split kfold:K/],
    [['--split', 'kfold:3', '--folds', '3'], /--folds takes 'all'/],
    [['--split', 'kfold:3', '--folds', 'all', '--fold', '1'], /--fold and --folds exclude each other/],
    [['--split', 'kfold:3/1', '--fold', '2'], /already names its fold/],
    [['--split', 'kfold:3/3'], /the fold must be 0…2/],
    [['--early-stop', '2'], /needs a validation set: add --validation 0.05/],
    [['--validation', '0.05', '--early-stop', '1.5'], /--early-stop takes a patience/],
    [['--validation', '2'], /--validation takes a fraction/],
    [['--model', 'neumf', '--validation', '0.05'], /for gradient rating models .*neumf is a ranking model/],
    [['--model', 'knn', '--validation', '0.05', '--early-stop', '2'], /knn is not a gradient model/],
    [['--validation', 'file:missing.csv'], new RegExp(`no such file ${join(dir, 'missing.csv').replace(/[.]/g, '\\.')}`)],
  ];
  for (const [args, message] of cases) {
    const out = `bad-${cases.findIndex((c) => c[0] === args)}`;
    const r = job(['--dataset', 'synthetic:tiny', '--out', out, ...args], 60_000);
    t.equal(r.status, 2, `${args.join(' ')}: exit 2 (${r.stderr.trim()})`);
    t.match(r.stderr, message, args.join(' '));
    t.notOk(r.stdout.includes('nats-server started'), `${args.join(' ')}: no broker started`);
    t.notOk(existsSync(join(dir, out)), `${args.join(' ')}: no out folder`);
  }
});

interface FoldsJson {
  k: number;
  split: string;
  folds: { fold: number; job: string; out: string; metrics: Record<string, number> }[];
  summary: Record<string, { mean: number; std: number; folds: number[] }>;
}

t.test('--split kfold:3 --folds all: three jobs, disjoint test folds covering the data, mean ± std', async (t) => {
  const r = job([
    ...['--job', 'cv', '--dataset', 'synthetic:tiny', '--split', 'kfold:3', '--folds', 'all', '--out', 'cv'],
    ...['--trainers', '1', '--data-shards', '2', '--ps-shards', '1', '--epochs', '2', '--batch-size', '128', '--eval-every', '0', '--backend', 'cpu'],
  ]);
  t.equal(r.status, 0, r.stderr.slice(-3000));
  const out = join(dir, 'cv');
  const report = JSON.parse(readFileSync(join(out, 'folds.json'), 'utf8')) as FoldsJson;
  t.equal(report.k, 3);
  t.same(
    report.folds.map((f) => f.fold),
    [0, 1, 2],
  );
  // Each fold is its own job with its own split, and its test ratings are a third of the data.
  const sizes = [...r.stdout.matchAll(/data: 100 users, 80 items, (\d+) train \/ (\d+) test ratings/g)].map((m) => [Number(m[1]), Number(m[2])]);
  t.equal(sizes.length, 3, 'three jobs');
  const total = sizes[0][0] + sizes[0][1];
  t.ok(
    sizes.every(([a, b]) => a + b === total && Math.abs(b - total / 3) <= 1),
    `each fold tests on a third: ${JSON.stringify(sizes)}`,
  );
  t.equal(
    sizes.reduce((s, [, b]) => s + b, 0),
    total,
    'the test folds add up to the whole dataset',
  );
  for (const f of report.folds) {
    const plan = JSON.parse(readFileSync(join(f.out, 'plan.json'), 'utf8')) as { split: string; job: string };
    t.equal(plan.split, `kfold:3/${f.fold}`, `fold ${f.fold}: its own split`);
    const metrics = JSON.parse(readFileSync(join(f.out, 'metrics.json'), 'utf8')) as { metrics: Record<string, number> };
    t.same(f.metrics, metrics.metrics, `fold ${f.fold}: folds.json has the job's metrics`);
  }
  const rmse = report.folds.map((f) => f.metrics.rmse);
  const mean = rmse.reduce((s, x) => s + x, 0) / 3;
  const std = Math.sqrt(rmse.reduce((s, x) => s + (x - mean) ** 2, 0) / 3);
  t.ok(Math.abs(report.summary.rmse.mean - mean) < 1e-12, 'rmse mean');
  t.ok(Math.abs(report.summary.rmse.std - std) < 1e-12, 'rmse std (population, as Surprise)');
  t.ok(std > 0, 'the folds differ');
  t.match(r.stdout, /Fold 1\s+Fold 2\s+Fold 3\s+Mean\s+Std/, 'the table header');
  t.match(r.stdout, new RegExp(`RMSE\\s+${rmse.map((x) => x.toFixed(4)).join('\\s+')}\\s+${mean.toFixed(4)}\\s+${std.toFixed(4)}`), 'the RMSE row');
  t.match(r.stdout, /MAE\s+/, 'the MAE row');
});
