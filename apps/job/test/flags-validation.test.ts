import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tsxCommand } from '@actorflow/test-child';
import { JobFlagError, parseCheckpointEvery, parseJobFlags, type JobPlan } from '../src/flags.ts';

const dir = mkdtempSync(join(tmpdir(), 'job-flags-'));
writeFileSync(join(dir, 'u1.base'), '1\t10\t5\t100\n');
writeFileSync(join(dir, 'u1.test'), '1\t20\t4\t101\n');
mkdirSync(join(dir, 'sub'));
const env = { INIT_CWD: dir };

t.test('paths are resolved against INIT_CWD and stored absolute', async (t) => {
  const plan = parseJobFlags(['--dataset', 'u1.base', '--split', 'file:u1.test', '--out', 'runs/a'], env) as JobPlan;
  t.equal(plan.dataset, join(dir, 'u1.base'));
  t.equal(plan.split, `file:${join(dir, 'u1.test')}`);
  t.equal(plan.out, join(dir, 'runs/a'));
  const fromSub = parseJobFlags(['--dataset', '../u1.base', '--split', 'file:../u1.test'], { INIT_CWD: join(dir, 'sub') }) as JobPlan;
  t.equal(fromSub.dataset, join(dir, 'u1.base'));
  t.equal(fromSub.out, `out/${fromSub.job}`, 'the default out stays under the repository');
  t.equal((parseJobFlags(['--split', 'user:5'], env) as JobPlan).split, 'user:5');
});

t.test('every bad split spec, dataset and model is one clear error', async (t) => {
  const bad: [string[], RegExp][] = [
    [['--split', 'nope'], /--split: unknown split 'nope'/],
    [['--split', 'random:2'], /--split: split 'random:2': the test fraction must be between 0 and 1/],
    [['--split', 'fixed:x'], /not a number/],
    [['--split', 'loo:1'], /takes no value/],
    [['--split', 'file:'], /needs a path/],
    [['--dataset', 'u1.base', '--split', 'file:missing.test'], new RegExp(`--split file:: no such file: ${join(dir, 'missing.test')}`)],
    [['--split', 'file:u1.test'], /a test file needs --dataset to be the training file/],
    [['--dataset', 'nope.csv'], new RegExp(`--dataset: no such file: ${join(dir, 'nope.csv')} \\('nope.csv' resolved against ${dir}\\)`)],
    [['--dataset', 'sub'], /is not a file/],
    [['--dataset', 'synthetic:huge'], /unknown synthetic size 'huge'/],
    [['--model', 'mnist-cnn', '--dataset', 'mnist:nowhere'], /no such folder/],
    [['--model', 'nope'], /unknown model 'nope'/],
  ];
  for (const [argv, msg] of bad) t.throws(() => parseJobFlags(argv, env), { name: 'JobFlagError', message: msg }, argv.join(' '));
  t.ok(JobFlagError);
});

t.test('data options: parsed, checked, passed to the data shards', async (t) => {
  // --epochs: without it mf's recommended early stopping adds its validation set (test/recommended-early-stop.test.ts).
  const plan = parseJobFlags(['--rating-range', '1,5', '--min-user-ratings', '5', '--min-item-ratings', '3', '--implicit-threshold', '4', '--epochs', '10'], env) as JobPlan;
  t.same(plan.data, { ratingRange: [1, 5], minUserRatings: 5, minItemRatings: 3, implicitThreshold: 4 });
  t.same((parseJobFlags(['--epochs', '10'], env) as JobPlan).data, {});
  t.throws(() => parseJobFlags(['--rating-range', '5'], env), { name: 'JobFlagError', message: /--rating-range takes LO,HI/ });
  t.throws(() => parseJobFlags(['--min-user-ratings', '-1'], env), /--min-user-ratings must be a positive integer/);
  t.throws(() => parseJobFlags(['--dataset', 'u1.base', '--split', 'file:u1.test', '--min-item-ratings', '2'], env), /do not apply to --split file:/);
  t.throws(() => parseJobFlags(['--model', 'mnist-cnn', '--implicit-threshold', '4'], env), /for rating datasets/);
});

t.test('the launcher rejects a bad flag before starting anything, and leaves no out folder', async (t) => {
  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  // As npm/nx run it: in the app's folder, with the user's folder in INIT_CWD.
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const cmd = tsxCommand(main, ['--dataset', 'u1.base', '--split', 'file:nope.test', '--out', 'o']);
  const r = spawnSync(cmd.command, cmd.args, {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, INIT_CWD: dir },
    cwd,
  });
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /^job: --split file:: no such file: .*nope\.test/m);
  t.notMatch(r.stdout, /nats-server started/);
  t.notOk(readdirSync(dir).includes('o'), 'no out folder');
  t.notOk(existsSync(join(cwd, 'o')), 'nor in the app folder');
});

t.test('fault-tolerance flags: checkpoint cadence, restarts, min trainers, heartbeat timeout; --resume loads plan.json', async (t) => {
  const plan = parseJobFlags([], env) as JobPlan;
  t.same(plan.checkpointEvery, { seconds: 30 }, 'default: every 30 s');
  t.equal(plan.maxRestarts, 3);
  t.equal(plan.heartbeatTimeoutS, 30);
  t.equal(plan.minTrainers, plan.trainers);
  t.same(parseCheckpointEvery('200'), { steps: 200 });
  t.same(parseCheckpointEvery('200,1.5s'), { steps: 200, seconds: 1.5 });
  for (const bad of ['0', '-1s', 'x', '1.5', '10m']) t.throws(() => parseCheckpointEvery(bad), JobFlagError, bad);
  t.throws(() => parseJobFlags(['--strategy', 'mirrored', '--trainers', '2', '--min-trainers', '3'], env), /--min-trainers 3 is above --trainers 2/);
  t.throws(() => parseJobFlags(['--min-trainers', '1'], env), /--min-trainers is for --strategy mirrored/);
  t.equal((parseJobFlags(['--max-restarts', '0'], env) as JobPlan).maxRestarts, 0, 'no restarts: the first fault fails the job');

  const out = join(dir, 'resume-me');
  mkdirSync(out, { recursive: true });
  t.throws(() => parseJobFlags(['--resume', out], env), /no plan.json there/);
  writeFileSync(join(out, 'plan.json'), JSON.stringify({ ...plan, job: 'saved-job', epochs: 7 }));
  const resumed = parseJobFlags(['--resume', 'resume-me', '--max-restarts', '5', '--verbose'], env) as JobPlan;
  t.equal(resumed.job, 'saved-job');
  t.equal(resumed.epochs, 7, 'what to train comes from plan.json');
  t.equal(resumed.maxRestarts, 5, 'run-time flags given now win');
  t.equal(resumed.checkpointEvery.seconds, 30, 'run-time flags not given keep the saved value');
  t.equal(resumed.resume, out);
  t.equal(resumed.out, out);
  t.throws(() => parseJobFlags(['--resume', out, '--epochs', '3'], env), /--resume continues the job .* drop --epochs/);
  writeFileSync(join(out, 'plan.json'), '{ not json');
  t.throws(() => parseJobFlags(['--resume', out], env), /plan.json is not readable JSON/);
});
