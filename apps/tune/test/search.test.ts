// tune's flags, grid, validation, ranking and report, without running jobs.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkGrid, expandGrid, parseGridFlag, parseTuneFlags, sampleSettings, settingArgs, splitArgs, TuneFlagError, unknownJobFlags, type TunePlan } from '../src/search.ts';
import { lowerIsBetter, pickMetric, rank, resultsTable, summarize, TuneResultError } from '../src/report.ts';
import { readJobMetrics, type TrialResult } from '../src/trials.ts';

const parse = (args: string[]): TunePlan => {
  const p = parseTuneFlags(args, { INIT_CWD: '/home/u' }, new Date('2026-12-02T05:00:00Z'));
  if (p === 'help') throw new Error('help');
  return p;
};

t.test('flags: tune’s own, the rest for every job', async (t) => {
  const p = parse(['--model', 'mf', '--grid', 'dim=16,64', '--grid', 'l2=0.0002,0.0005', '--dataset', 'data/u.data', '--verbose', '--trainers', '1', '--out', 'runs/t']);
  t.equal(p.id, 'tune-20261202050000');
  t.equal(p.out, '/home/u/runs/t', '--out relative to the user’s folder');
  t.same(p.grid, [
    { key: 'dim', values: ['16', '64'] },
    { key: 'l2', values: ['0.0002', '0.0005'] },
  ]);
  t.same(p.settings, [
    { dim: '16', l2: '0.0002' },
    { dim: '16', l2: '0.0005' },
    { dim: '64', l2: '0.0002' },
    { dim: '64', l2: '0.0005' },
  ]);
  t.same(p.jobArgs, ['--model', 'mf', '--dataset', 'data/u.data', '--verbose', '--trainers', '1']);
  t.equal(p.parallel, 1);
  t.equal(parse(['--grid', 'dim=8']).out, 'out/tune-20261202050000');
  t.same(settingArgs({ dim: '16', l2: '0.0005', epochs: '3' }), ['--hyper', 'dim=16', '--l2=0.0005', '--epochs=3']);
  t.same(splitArgs(['--grid=dim=1', '--monitor', '--epochs', '-1', '--help']), { own: ['--grid=dim=1', '--help'], job: ['--monitor', '--epochs', '-1'] });
  t.equal(parseTuneFlags(['--help'], {}), 'help');
});

t.test('--folds K: every job cross-validates on a K-fold split', async (t) => {
  t.same(parse(['--grid', 'dim=8', '--folds', '3', '--dataset', 'x.csv']).jobArgs, ['--model', 'mf', '--split', 'kfold:3', '--folds', 'all', '--dataset', 'x.csv']);
  t.same(parse(['--grid', 'dim=8', '--folds', 'all', '--split', 'kfold:5']).jobArgs, ['--model', 'mf', '--folds', 'all', '--split', 'kfold:5'], '--folds all passes through');
  t.throws(() => parse(['--grid', 'dim=8', '--folds', '1']), /--folds must be an integer ≥ 2/);
  t.throws(() => parse(['--grid', 'dim=8', '--folds', '3', '--split', 'random:0.1']), /--folds 3 sets every job's split to kfold:3; drop --split random:0\.1/);
});

t.test('--random N: N distinct settings, the same for the same --seed', async (t) => {
  const p = parse(['--grid', 'dim=8,16,32,64', '--grid', 'lr=0.001,0.01,0.1', '--random', '5', '--seed', '7']);
  t.equal(p.settings.length, 5);
  t.equal(new Set(p.settings.map((s) => JSON.stringify(s))).size, 5, 'distinct');
  t.same(parse(['--grid', 'dim=8,16,32,64', '--grid', 'lr=0.001,0.01,0.1', '--random', '5', '--seed', '7']).settings, p.settings, 'seeded');
  t.ok(p.jobArgs.includes('--seed'), 'the seed also goes to the jobs');
  const all = expandGrid([{ key: 'a', values: ['1', '2'] }]);
  t.same(sampleSettings(all, 9, 1).length, 2, 'at most the whole grid');
});

t.test('every grid key is checked against the model before anything runs', async (t) => {
  const bad: [string[], RegExp][] = [
    [['--grid', 'dimm=8,16'], /^--grid dimm: model 'mf' has no hyper-parameter 'dimm' \(did you mean dim\?\); it takes dim, initStd, reg, or the launcher's lr, l2/],
    [['--grid', 'numUsers=5'], /the data sets numUsers; it cannot be tuned/],
    [['--grid', 'dim=8,x'], /--grid dim: 'x' is not a number/],
    [['--grid', 'dim=8', '--grid', 'dim=16'], /given twice/],
    [['--grid', 'dim'], /--grid takes KEY=V1,V2/],
    [['--grid', 'dim=8,,16'], /--grid takes KEY=V1,V2/],
    [['--grid', 'dim=8,8'], /listed twice/],
    [['--model', 'nope', '--grid', 'dim=8'], /--model: unknown model 'nope'/],
    [['--dataset', 'x'], /give at least one --grid/],
    [['--grid', 'dim=8', '--random', '0'], /--random must be a positive integer/],
    [['--grid', 'dim=8', '--parallel', 'two'], /--parallel must be a positive integer/],
    [['--grid', 'dim=8', '--job', 'x'], /tune names its jobs/],
    [['--grid', 'dim=8', '--hyper', 'dim=4'], /--grid dim: dim is also set for every job \(--hyper dim=4\)/],
    [['--grid', 'l2=0.1', '--l2', '0.2'], /--grid l2: l2 is also set for every job/],
    [['--grid=dim=8', '--random'], /--random/],
  ];
  for (const [args, re] of bad) t.throws(() => parse(args), re, args.join(' '));
  t.throws(() => parse(['--grid', 'dimm=8']), TuneFlagError);
  t.doesNotThrow(() => checkGrid('mf', [{ key: 'optimizer', values: ['adam', 'sgd'] }]), 'optimizer names are not numbers');
  t.doesNotThrow(() => checkGrid('ncf', [parseGridFlag('dim=8,16')]));
});

t.test('job flags are checked against the launcher’s own --help', async (t) => {
  const usage = 'Usage: npx nx run job -- [options]\n  --dataset SPEC  x\n  --trainers N  y\n  --verbose  z\n';
  t.same(unknownJobFlags(['--dataset', 'a', '--trainers=2', '--verbose'], usage), []);
  t.same(unknownJobFlags(['--trainer', '2', '--zzzzzzzz'], usage), ['--trainer (did you mean --trainers?)', '--zzzzzzzz']);
});

const trial = (index: number, setting: Record<string, string>, metrics?: Record<string, number>, std?: Record<string, number>): TrialResult => ({
  index,
  job: `tune-x-${index}`,
  setting,
  out: `/o/${index}`,
  status: metrics !== undefined ? 'ok' : 'failed',
  ...(metrics !== undefined ? { metrics } : { error: 'trainer-0 diverged' }),
  ...(std !== undefined ? { std } : {}),
  seconds: 10 + index,
  exitCode: metrics !== undefined ? 0 : 1,
});

t.test('results: sorted by the headline metric, failed jobs last, the best with its command', async (t) => {
  const plan = parse(['--grid', 'dim=16,64', '--grid', 'l2=0.0002', '--dataset', 'synthetic:tiny']);
  const results = [
    trial(1, { dim: '16', l2: '0.0002' }, { rmse: 0.95, mae: 0.75 }, { rmse: 0.01 }),
    trial(2, { dim: '64', l2: '0.0002' }, { rmse: 0.92, mae: 0.74 }),
    trial(3, { dim: '64', l2: '0.1' }),
  ];
  t.equal(pickMetric(results, undefined), 'rmse');
  t.throws(() => pickMetric(results, 'ndcg@10'), TuneResultError);
  t.same(
    rank(results, 'rmse').map((r) => r.index),
    [2, 1, 3],
  );
  t.same(
    rank([trial(1, {}, { 'ndcg@10': 0.2 }), trial(2, {}, { 'ndcg@10': 0.3 })], 'ndcg@10').map((r) => r.index),
    [2, 1],
    'higher is better for ranking metrics',
  );
  t.ok(lowerIsBetter('rmse') && lowerIsBetter('bce') && lowerIsBetter('trainLoss') && !lowerIsBetter('accuracy') && !lowerIsBetter('recall@20'));
  const s = summarize(plan, results);
  t.equal(s.metric, 'rmse');
  t.equal(s.direction, 'lower');
  t.same(s.best?.setting, { dim: '64', l2: '0.0002' });
  t.equal(s.best?.value, 0.92);
  t.equal(s.best?.command, 'npx nx run job -- --model mf --dataset synthetic:tiny --hyper dim=64 --l2=0.0002');
  const table = resultsTable(plan, s.trials, s.metric).split('\n');
  t.match(table[0] ?? '', /^#\s+dim\s+l2\s+rmse\s+mae\s+seconds\s+job$/);
  t.match(table[2] ?? '', /^1\s+64\s+0\.0002\s+0\.9200\s+0\.7400\s+12\.0\s+tune-x-2$/);
  t.match(table[3] ?? '', /^2\s+16\s+0\.0002\s+0\.9500 ± 0\.0100/, 'std shown when the job reports it');
  t.match(table[4] ?? '', /^✗\s+64\s+0\.1\s+failed: trainer-0 diverged/);
  t.equal(summarize(plan, [trial(1, { dim: '16' })]).best, undefined, 'no best when every job failed');
});

t.test('metrics.json is read back, or a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tune-'));
  t.throws(() => readJobMetrics(dir), /metrics\.json is missing/);
  writeFileSync(join(dir, 'metrics.json'), JSON.stringify({ metrics: { rmse: 0.9, bad: null }, std: { rmse: 0.01 } }));
  t.same(readJobMetrics(dir), { metrics: { rmse: 0.9 }, std: { rmse: 0.01 } });
  writeFileSync(join(dir, 'metrics.json'), JSON.stringify({ metrics: {} }));
  t.throws(() => readJobMetrics(dir), /no numeric metrics/);
  // A --folds all job: the mean and std over its folds (folds.json), as the launcher reports them.
  writeFileSync(join(dir, 'folds.json'), JSON.stringify({ k: 3, summary: { rmse: { mean: 0.93, std: 0.004, folds: [0.93, 0.926, 0.934] }, mae: { mean: 0.73, std: 0.002, folds: [] } } }));
  t.same(readJobMetrics(dir), { metrics: { rmse: 0.93, mae: 0.73 }, std: { rmse: 0.004, mae: 0.002 } });
  writeFileSync(join(dir, 'folds.json'), JSON.stringify({ k: 3, summary: {} }));
  t.throws(() => readJobMetrics(dir), /no metric summary/);
});
