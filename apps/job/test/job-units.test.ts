import t from 'tap';
import { JobFlagError, parseJobFlags, type JobPlan } from '../src/flags.ts';
import { Progress, formatMetrics } from '../src/progress.ts';
import { ActorFailedError, Supervisor } from '../src/supervisor.ts';
import { lossReport } from './loss-report.ts';

t.test('flags: defaults, pass-through model flags, and clear errors', async (t) => {
  const plan = parseJobFlags(['--job', 'j1', '--model-flag', 'lr=0.02', '--epochs', '3'], {}) as JobPlan;
  t.equal(plan.strategy, 'ps');
  t.equal(plan.trainers, 2);
  t.equal(plan.epochs, 3);
  t.same(plan.modelFlags, ['--lr', '0.02']);
  t.equal(plan.out, 'out/j1');
  t.equal(plan.natsUrl, undefined);
  t.equal((parseJobFlags([], { NATS_URL: 'nats://x:1' }) as JobPlan).natsUrl, 'nats://x:1');
  t.match((parseJobFlags([], {}) as JobPlan).job, /^job-\d+$/);
  t.equal(parseJobFlags(['--help'], {}), 'help');
  t.throws(() => parseJobFlags(['--bogus'], {}), JobFlagError);
  t.throws(() => parseJobFlags(['--job', 'a.b'], {}), /NATS subject token/);
  t.same(
    (parseJobFlags(['--model-flag', 'dense-updates', '--hyper', 'dim=8'], {}) as JobPlan).modelFlags,
    ['--dense-updates', '--hyper', 'dim=8'],
    'a bare model flag is a switch; --hyper passes through',
  );
  t.throws(() => parseJobFlags(['--model-flag', '=3'], {}), /FLAG=VALUE or a bare FLAG/);
  t.throws(() => parseJobFlags(['--model', 'nope'], {}), /unknown model 'nope'/);
  const cnn = parseJobFlags(['--model', 'mnist-cnn'], {}) as JobPlan;
  t.equal(cnn.dataset, 'mnist:bundled', 'image models default to the bundled digits');
  t.equal(cnn.batchSize, 32, "and to the model's recommended batch size");
  t.throws(() => parseJobFlags(['--strategy', 'nope'], {}), /must be ps or mirrored/);
  t.throws(() => parseJobFlags(['--eval-every=-1'], {}), /non-negative/);
});

t.test('progress lines summarise ranks and evals of this job only', async (t) => {
  const lines: string[] = [];
  const plan = parseJobFlags(['--job', 'p1', '--batch-size', '10', '--epochs', '2'], {}) as JobPlan;
  const p = new Progress(plan, (l) => lines.push(l), 0);
  p.setDataInfo({ trainRows: 100 });
  p.onLoss(lossReport({ job: 'p1', rank: 0, step: 5, epoch: 0, loss: 0.5, examplesPerSec: 100 }));
  p.onLoss(lossReport({ job: 'other', rank: 1, step: 50, epoch: 0, loss: 9, examplesPerSec: 1 }));
  p.onLoss(lossReport({ job: 'p1', rank: 1, step: 5, epoch: 1, loss: 0.7, examplesPerSec: 50 }));
  p.onEval({ job: 'p1', step: 10, metrics: { rmse: 0.9 }, ts: 0 });
  p.onEval({ job: 'other', step: 10, metrics: { rmse: 0.1 }, ts: 0 });
  p.finish();
  t.equal(p.maxStep, 5);
  t.match(lines.at(-2) ?? '', /eval @ step 10: rmse 0\.9000/);
  t.match(lines.at(-1) ?? '', /step 10\/20 \(50 %\) epoch 2 loss 0\.6000 150 ex\/s over 2 rank\(s\) \[wasm\] \| last eval rmse 0\.9000/);
  t.equal(formatMetrics({ a: 1 }), 'a 1.0000');
});

t.test('progress measures training speed from the step reports (metrics.json throughput)', async (t) => {
  const plan = parseJobFlags(['--job', 'p2', '--batch-size', '10', '--epochs', '1'], {}) as JobPlan;
  const p = new Progress(plan, () => undefined, 1e9);
  t.equal(p.throughput(), undefined, 'nothing before two reports');
  const timing = { computeMs: 8, serdeMs: 1, waitMs: 1 };
  for (let k = 0; k < 5; k++) p.onLoss(lossReport({ job: 'p2', rank: k % 2, step: k, epoch: 0, loss: 1, examples: 10, examplesPerSec: 0, backend: 'cpu', ts: 1000 + 250 * k, timing }));
  p.onLoss(lossReport({ job: 'p2', rank: 0, step: 5, epoch: 0, loss: 1, examples: 0, examplesPerSec: 0, backend: 'cpu', ts: 9000, done: true }));
  const tp = p.throughput();
  t.ok(tp !== undefined);
  t.equal(tp?.trainSeconds, 1.25, '1 s between the first and last report plus one mean interval');
  t.equal(tp?.examplesPerSecond, 40);
  t.equal(tp?.backend, 'cpu');
  t.same(tp?.stepTiming, { computeMs: 8, serdeMs: 1, waitMs: 1, waitAndSerdeShare: 0.2 });
});

t.test('supervisor: a worker that fails fails the job with its last output; stopAll stops services', async (t) => {
  const dir = t.testdir({
    'ok.ts': 'console.log("fine")',
    'bad.ts': 'console.error("something broke"); process.exit(3)',
    'service.ts': 'setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0));',
  });
  const sup = new Supervisor({ root: dir, env: {}, logDir: `${dir}/logs` });
  sup.start({ name: 'svc', entry: 'service.ts', args: [], role: 'service' });
  sup.start({ name: 'w-ok', entry: 'ok.ts', args: [], role: 'worker' });
  t.throws(() => sup.start({ name: 'w-ok', entry: 'ok.ts', args: [], role: 'worker' }), /already running/);
  sup.start({ name: 'w-bad', entry: 'bad.ts', args: [], role: 'worker' });
  await t.rejects(sup.waitForWorkers(), ActorFailedError);
  await t.rejects(sup.failed(), /actor w-bad exited with code 3[\s\S]*something broke/);
  await sup.stopAll(2000);

  const good = new Supervisor({ root: dir, env: {} });
  good.start({ name: 'svc', entry: 'service.ts', args: [], role: 'service' });
  good.start({ name: 'w', entry: 'ok.ts', args: [], role: 'worker' });
  await good.waitForWorkers();
  await good.stopAll(2000);
  t.pass('workers done, services stopped without counting as failures');
});

t.test('supervisor: the restart policy restarts a crashed service with new args; a worker that stops beating is killed as stalled', async (t) => {
  const dir = t.testdir({
    // Crashes the first time (no --again), then serves until stopped.
    'flaky.ts': 'if (!process.argv.includes("--again")) process.exit(7); setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0));',
    'hang.ts': 'setInterval(() => {}, 1000);',
  });
  const exits: { name: string; code: number | null; stalled: boolean; restarts: number }[] = [];
  const starts: string[] = [];
  const sup = new Supervisor({
    root: dir,
    env: {},
    heartbeatTimeoutMs: 300,
    log: () => undefined,
    onStart: (name, pid, restarts) => starts.push(`${name}:${restarts}:${typeof pid}`),
    onExit: (e) => {
      exits.push({ name: e.name, code: e.code, stalled: e.stalled, restarts: e.restarts });
      if (e.name === 'flaky') return { action: 'restart', args: ['--again'] };
      return { action: 'ignore' };
    },
  });
  sup.start({ name: 'flaky', entry: 'flaky.ts', args: [], role: 'service' });
  sup.start({ name: 'hang', entry: 'hang.ts', args: [], role: 'worker' });
  while (!starts.includes('flaky:1:number')) await new Promise((r) => setTimeout(r, 50));
  sup.seen('hang'); // one heartbeat, then silence: declared dead after 300 ms
  await sup.waitForWorkers(); // 'ignore' marks the stalled worker finished
  t.same(
    exits.find((e) => e.name === 'flaky'),
    { name: 'flaky', code: 7, stalled: false, restarts: 0 },
  );
  t.same(
    exits.find((e) => e.name === 'hang'),
    { name: 'hang', code: null, stalled: true, restarts: 0 },
  );
  t.equal(sup.restarts('flaky'), 1);
  t.ok(
    sup.list().some((a) => a.name === 'flaky' && a.running),
    'the restarted service runs',
  );
  t.ok(starts.includes('flaky:1:number'), 'onStart told about the restart with its pid');
  await sup.stopAll(2000);
});
