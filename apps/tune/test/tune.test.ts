// End to end: `tune` as `npx nx run tune` runs it (main.ts from apps/tune, the user's folder in
// INIT_CWD), a 2×1 grid over real launcher jobs on a tiny synthetic dataset. Each job's result is
// what its own metrics.json says, the table is sorted by RMSE and tune.json names the best setting.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TuneSummary } from '../src/report.ts';
import { tsxCommand } from '@actorflow/test-child';

const app = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function tune(args: string[], userDir: string): { status: number | null; stdout: string; stderr: string } {
  const cmd = tsxCommand('main.ts', args);
  const r = spawnSync(cmd.command, cmd.args, { cwd: app, encoding: 'utf8', env: { ...process.env, INIT_CWD: userDir }, timeout: 900_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('a 2×1 grid of real jobs: table sorted by rmse, best setting, tune.json', { timeout: 900_000 }, async (t) => {
  const user = mkdtempSync(join(tmpdir(), 'tune-user-'));
  const small = ['--dataset', 'synthetic:tiny', '--trainers', '1', '--data-shards', '1', '--ps-shards', '1', '--epochs', '2', '--eval-every', '0', '--checkpoint-every', '100000'];
  const r = tune(['--model', 'mf', '--grid', 'l2=0.0002,0.2', '--grid', 'dim=4', ...small, '--out', 'search'], user);
  t.equal(r.status, 0, r.stderr);
  const out = join(user, 'search');
  const summary = JSON.parse(readFileSync(join(out, 'tune.json'), 'utf8')) as TuneSummary;
  t.equal(summary.metric, 'rmse');
  t.equal(summary.trials.length, 2);
  for (const trial of summary.trials) {
    t.equal(trial.status, 'ok', `${trial.job} finished`);
    const own = JSON.parse(readFileSync(join(trial.out, 'metrics.json'), 'utf8')) as { metrics: Record<string, number> };
    t.same(trial.metrics, Object.fromEntries(Object.entries(own.metrics).filter(([, v]) => typeof v === 'number')), `${trial.job}: the job's own metrics.json`);
    const plan = JSON.parse(readFileSync(join(trial.out, 'plan.json'), 'utf8')) as { modelFlags: string[]; job: string };
    t.equal(plan.job, trial.job);
    t.ok(
      plan.modelFlags.join(' ').includes(`--l2 ${trial.setting.l2 ?? ''}`) && plan.modelFlags.join(' ').includes('--hyper dim=4'),
      `${trial.job} ran with its setting: ${plan.modelFlags.join(' ')}`,
    );
    t.ok(existsSync(join(out, 'logs', `${trial.job}.log`)), 'its output is kept');
  }
  const [first, second] = summary.trials;
  t.ok((first?.metrics?.rmse ?? Infinity) <= (second?.metrics?.rmse ?? -Infinity), 'best first');
  t.same(summary.best?.setting, first?.setting);
  t.equal(summary.best?.value, first?.metrics?.rmse);
  t.match(summary.best?.command ?? '', /^npx nx run job -- --model mf --dataset synthetic:tiny .* --l2=0\.[0-9]+ --hyper dim=4$/);
  // The printed table: header, rule, the two jobs in tune.json's order, then the best line.
  const lines = r.stdout.split('\n');
  const header = lines.findIndex((l) => /^#\s+l2\s+dim\s+rmse/.test(l));
  t.ok(header >= 0, 'a results table');
  t.match(lines[header + 2] ?? '', new RegExp(`^1\\s+${first?.setting.l2 ?? ''}\\s+4\\s+${(first?.metrics?.rmse ?? 0).toFixed(4)}`));
  t.match(lines[header + 3] ?? '', new RegExp(`^2\\s+${second?.setting.l2 ?? ''}\\s+4\\s+`));
  t.match(r.stdout, new RegExp(`best: l2=${first?.setting.l2 ?? ''} dim=4 → rmse ${(first?.metrics?.rmse ?? 0).toFixed(4)}`));
});

t.test('--folds K: each setting is scored by the mean over its folds (the launcher’s --folds all)', { timeout: 900_000 }, async (t) => {
  const user = mkdtempSync(join(tmpdir(), 'tune-user-'));
  const small = ['--dataset', 'synthetic:tiny', '--trainers', '1', '--data-shards', '1', '--ps-shards', '1', '--epochs', '1', '--eval-every', '0', '--checkpoint-every', '100000'];
  const r = tune(['--grid', 'dim=4', '--folds', '2', ...small, '--out', 'cv'], user);
  t.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(readFileSync(join(user, 'cv', 'tune.json'), 'utf8')) as TuneSummary;
  const trial = summary.trials[0];
  const folds = JSON.parse(readFileSync(join(trial?.out ?? '', 'folds.json'), 'utf8')) as { k: number; summary: Record<string, { mean: number; std: number }> };
  t.equal(folds.k, 2, 'the job ran both folds');
  t.equal(trial?.metrics?.rmse, folds.summary.rmse?.mean, 'ranked by the mean over the folds');
  t.equal(trial?.std?.rmse, folds.summary.rmse?.std);
  t.match(r.stdout, /best: dim=4 → rmse \d\.\d{4} ± \d\.\d{4}/);
});

t.test('bad flags stop tune before any job starts', { timeout: 300_000 }, async (t) => {
  const user = mkdtempSync(join(tmpdir(), 'tune-user-'));
  const bad = tune(['--grid', 'dimm=4,8', '--out', 'never'], user);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /^tune: --grid dimm: model 'mf' has no hyper-parameter 'dimm' \(did you mean dim\?\)/);
  const job = tune(['--grid', 'dim=4,8', '--trainer', '1', '--out', 'never'], user);
  t.equal(job.status, 2);
  t.match(job.stderr, /^tune: unknown job flag --trainer \(did you mean --trainers\?\)/);
  // A flag the launcher knows with a value it refuses: the first job says so, and tune stops.
  const value = tune(['--grid', 'dim=4,8', '--trainers', '0', '--out', 'refused'], user);
  t.equal(value.status, 2);
  t.match(value.stderr, /job tune-\d+-1 refused its flags, so every job would: --trainers must be a positive integer, got '0'/);
  t.notMatch(value.stdout, /\[2\/2\]/, 'the second job never started');
  t.notOk(existsSync(join(user, 'never')), 'nothing written for a search that never started');
});
