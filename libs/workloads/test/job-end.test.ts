// The by-hand end of a job over a real nats-server: when the trainers count as done, and who hears the end.
import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { lossReportCodec, subjects, type JobConfig, type LossReport } from '@actorflow/protocol';
import { announceEnd, formatDuration, gradientWorkload, JobProgress, knnWorkload, onJobEnd, plannedJobSteps, supervised, ThroughputMeter, trainersDone } from '../mod.ts';

const baseConfig = (model: string, hyper: JobConfig['hyper']): JobConfig => ({
  job: 'j',
  strategy: 'ps',
  worldSize: 2,
  model,
  hyper,
  optimizer: { name: 'sgd', lr: 0.01 },
  psShards: 1,
  staleness: 'none',
  seed: 1,
});

const report = (job: string, rank: number, step: number, done: boolean, strategy = 'ps'): Uint8Array =>
  lossReportCodec.encode({ job, rank, step, epoch: 0, loss: 0.5, examples: 8, examplesPerSec: 1, strategy, backend: 'cpu', ts: Date.now(), ...(done ? { done } : {}) } satisfies LossReport);

t.test('trainers are done when every rank heard from has reported done (a mirrored group: all of it)', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const watch = trainersDone(nc, 'j', { minRanks: (s) => (s === 'mirrored' ? 3 : 1), settleMs: 50 });
  let resolved = false;
  void watch.done.then(() => (resolved = true));
  const roundTrip = async (): Promise<void> => {
    await nc.flush();
    await new Promise((r) => setTimeout(r, 200)); // past the settle time
  };
  nc.publish(subjects.loss, report('j', 0, 5, false, 'mirrored'));
  nc.publish(subjects.loss, report('j', 1, 5, false, 'mirrored'));
  nc.publish(subjects.loss, report('other', 2, 99, true, 'mirrored')); // another job: ignored
  nc.publish(subjects.loss, new TextEncoder().encode('not a report'));
  nc.publish(subjects.loss, report('j', 0, 10, true, 'mirrored'));
  await roundTrip();
  t.notOk(resolved, 'rank 1 still trains');
  nc.publish(subjects.loss, report('j', 1, 10, true, 'mirrored'));
  await roundTrip();
  t.notOk(resolved, 'a mirrored group of 3: rank 2 has not finished');
  nc.publish(subjects.loss, report('j', 2, 10, true, 'mirrored'));
  const done = await watch.done;
  t.same(done, { strategy: 'mirrored', steps: 10, ranks: [0, 1, 2] });
  watch.stop();
});

t.test('the end reaches actors that listen, not those that keep serving or run under a launcher', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  t.equal(supervised({ ACTORFLOW_SUPERVISED: '1' }), true);
  t.equal(supervised({}), false);
  const heard: string[] = [];
  onJobEnd(nc, 'j', (why) => heard.push(`plain ${why}`), { env: {} });
  onJobEnd(nc, 'j', (why) => heard.push(`keep ${why}`), { keepServing: true, env: {} });
  onJobEnd(nc, 'j', (why) => heard.push(`supervised ${why}`), { env: { ACTORFLOW_SUPERVISED: '1' } });
  const other = onJobEnd(nc, 'k', (why) => heard.push(`other job ${why}`), { env: {} });
  // A sentinel on the same connection: once it has the three messages, every listener has had them (in order).
  const sentinel = nc.subscribe(subjects.ctl('j', 'stop'), { max: 3 });
  const drained = (async () => {
    for await (const _m of sentinel) void _m;
  })();
  nc.publish(subjects.ctl('j', 'stop'), new TextEncoder().encode('garbage'));
  announceEnd(nc, 'j', 'done');
  announceEnd(nc, 'j', 'again'); // once only
  await drained;
  t.same(heard, ['plain done']);
  other.stop();
});

t.test('a by-hand job progress: step out of the planned total, examples/s over the ranks, an ETA at the rate seen', (t) => {
  let now = 0;
  const ps = new JobProgress({ strategy: 'ps', totalSteps: 100, now: () => now });
  t.equal(ps.etaSeconds(), undefined, 'no ETA before any step');
  ps.onLoss({ rank: 0, step: 10, epoch: 0, loss: 0.5, examplesPerSec: 300 });
  ps.onLoss({ rank: 1, step: 10, epoch: 1, loss: 0.7, examplesPerSec: 200 });
  t.equal(ps.stepsDone, 20, 'ps: pushes summed over the trainers');
  t.equal(ps.etaSeconds(), undefined, 'no ETA before a second of rate');
  now = 2000;
  ps.onLoss({ rank: 0, step: 30, epoch: 1, loss: 0.5, examplesPerSec: 300 });
  t.equal(ps.stepsDone, 40);
  t.equal(ps.etaSeconds(), 4, 'from the first report (10 steps) to 40 in 2 s: 60 left take 4 s');
  t.equal(ps.line(), 'step 40/100 (40 %) epoch 2 loss 0.6000 500 ex/s over 2 rank(s) | ETA 4s');
  now = 3000;
  ps.onLoss({ rank: 1, step: 70, epoch: 2, loss: 0.4, examplesPerSec: 200 });
  t.equal(ps.etaSeconds(), undefined, 'no ETA once the total is reached');
  t.match(ps.line(), /^step 100\/100 \(100 %\) epoch 3 /);
  const mirrored = new JobProgress({ strategy: 'mirrored', totalSteps: undefined });
  mirrored.onLoss({ rank: 0, step: 7, epoch: 0, loss: 1, examplesPerSec: 10 });
  mirrored.onLoss({ rank: 1, step: 6, epoch: 0, loss: 1, examplesPerSec: 10 });
  t.equal(mirrored.stepsDone, 7, "mirrored: the furthest rank's global step");
  t.equal(mirrored.line(), 'step 7 epoch 1 loss 1.0000 20 ex/s over 2 rank(s)', 'no total known: no fraction, no ETA');
  t.end();
});

t.test('job progress as the launcher drives it: resumed ranks, a shrinking group rewound to its checkpoint', (t) => {
  let now = 0;
  const p = new JobProgress({ strategy: 'mirrored', totalSteps: undefined, now: () => now });
  p.setRankSteps({ '0': 12, '1': 12, '2': 12 });
  t.equal(p.ranks, 3);
  t.same(p.rankSteps(), { '0': 12, '1': 12, '2': 12 }, 'a resumed job starts from the steps it had reached');
  p.setTotalSteps(40);
  t.equal(p.totalSteps, 40);
  p.onLoss({ rank: 0, step: 20, epoch: 1, loss: 0.5, examplesPerSec: 10 });
  now = 5000;
  p.onLoss({ rank: 0, step: 25, epoch: 1, loss: 0.5, examplesPerSec: 10 });
  t.equal(p.etaSeconds(), 15, '5 steps in 5 s, 15 to go');
  p.keepRanks(2);
  p.rewindTo(18);
  t.same(p.rankSteps(), { '0': 18, '1': 12 }, 'rank 2 forgotten, the others back at the checkpoint');
  t.equal(p.etaSeconds(), undefined, 'the rate is measured again after a rewind');
  t.equal(p.line(' [cpu]'), 'step 18/40 (45 %) epoch 2 loss 0.5000 10 ex/s over 2 rank(s) [cpu]', 'the mean loss of the ranks that reported one; extra text before the ETA');
  t.end();
});

t.test('the planned step total: the workload plan, else examples per epoch over the (global) batch, times the epochs', (t) => {
  const info = { kind: 'ratings', numUsers: 10, numItems: 10, trainRows: 1000, testRows: 10, globalMean: 3, shards: 1, batchSize: 64, epochs: 3, trainUsers: 90 } as const;
  const mf = baseConfig('mf', { numUsers: 10, numItems: 10, dim: 4 });
  t.equal(plannedJobSteps(gradientWorkload, mf, 'ps', 1, info), 16 * 3, 'ps: ceil(1000 / 64) batches per epoch, over every trainer');
  t.equal(plannedJobSteps(gradientWorkload, mf, 'mirrored', 2, info), 8 * 3, 'mirrored: the global step takes 2 × 64');
  t.equal(plannedJobSteps(gradientWorkload, mf, 'ps', 1, { ...info, epochs: 0 }), undefined, 'unknown epochs: no total');
  const knn = baseConfig('knn', { blocks: 8, numUsers: 50, numItems: 40 });
  t.equal(plannedJobSteps(knnWorkload, knn, 'mirrored', 2, info), 4, "kNN: the workload's own plan (its blocks over the ranks)");
  t.end();
});

t.test("the throughput meter: metrics.json's trainSeconds, examples/s and per-step split from the step reports", (t) => {
  const m = new ThroughputMeter();
  m.add({ ts: 1000, examples: 100, backend: 'cpu', timing: { computeMs: 6, serdeMs: 2, waitMs: 2 } });
  t.equal(m.throughput(), undefined, 'one report: no span yet');
  m.add({ ts: 2000, examples: 100, timing: { computeMs: 2, serdeMs: 0, waitMs: 0 } });
  m.add({ ts: 3000, examples: 100 });
  m.add({ ts: 9000, examples: 0, done: true }); // the final report: not a step
  m.add({ ts: 'late', examples: 5 }); // not a number: ignored
  t.same(m.throughput(), { trainSeconds: 3, examplesPerSecond: 100, backend: 'cpu', stepTiming: { computeMs: 4, serdeMs: 1, waitMs: 1, waitAndSerdeShare: 1 / 3 } });
  t.equal(formatDuration(42), '42s');
  t.equal(formatDuration(185), '3m05s');
  t.equal(formatDuration(3720), '1h02m');
  t.end();
});
