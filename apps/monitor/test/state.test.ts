import t from 'tap';
import type { LossReport } from '@actorflow/protocol';
import { Series } from '../src/series.ts';
import { MonitorState, type MonitorEvent } from '../src/state.ts';
import { demoReports } from './helpers.ts';

const loss = (o: Partial<LossReport> = {}): LossReport => ({
  job: 'j',
  rank: 0,
  step: 1,
  epoch: 0,
  loss: 1,
  examples: 10,
  examplesPerSec: 100,
  strategy: 'ps',
  backend: 'cpu',
  ts: 1,
  ...o,
});

t.test('series: keeps points, then merges pairs and strides so the history stays bounded', async (t) => {
  const s = new Series(4);
  for (let i = 1; i <= 4; i++) s.push(i, i * 10);
  t.same(s.points(), [
    [1, 10],
    [2, 20],
    [3, 30],
    [4, 40],
  ]);
  t.equal(s.stride, 1);
  s.push(5, 50); // 5 points > 4: merged into pairs, stride 2
  t.same(s.points(), [
    [2, 15],
    [4, 35],
    [5, 50],
  ]);
  t.equal(s.stride, 2);
  s.push(6, 60); // pending bucket shows as a partial point
  t.same(s.points().at(-1), [6, 60]);
  s.push(7, 70);
  t.same(s.points().at(-1), [7, 65]);
  s.push(Number.NaN, 1);
  s.push(8, Number.POSITIVE_INFINITY);
  t.equal(s.received, 9, 'non-finite values are counted');
  t.same(s.lastValues(2), [50, 65]);
  const big = new Series(100);
  for (let i = 0; i < 100_000; i++) big.push(i, Math.sin(i));
  t.ok(big.points().length <= 101, `bounded: ${big.points().length} points`);
  t.equal(big.points().at(-1)?.[0], 99_999, 'covers the latest step');
  t.throws(() => new Series(1), RangeError);
});

t.test('state: per job and rank, latest values, eval metrics, filter, events', async (t) => {
  const events: MonitorEvent[] = [];
  const st = new MonitorState({ job: 'j' });
  const off = st.listen((e) => events.push(e));
  st.listen(() => {
    throw new Error('a broken listener');
  });
  t.ok(st.onLoss(loss({ rank: 1, step: 1, loss: 2 })));
  t.ok(st.onLoss(loss({ rank: 0, step: 1, loss: 3 })));
  t.ok(st.onLoss(loss({ rank: 0, step: 2, loss: Number.NaN, done: true, timing: { computeMs: 1, serdeMs: 2, waitMs: 3 } })));
  t.notOk(st.onLoss(loss({ job: 'other' })), 'filtered job');
  t.ok(st.onEval({ job: 'j', step: 2, metrics: { rmse: 0.9, 'ndcg@10': Number.NaN }, ts: 5, final: true }));
  t.notOk(st.onEval({ job: 'other', step: 2, metrics: {}, ts: 5 }));
  st.reject('bad');
  t.equal(st.seq, 4);
  t.equal(events.length, 4);
  t.same(
    events.map((e) => e.kind),
    ['loss', 'loss', 'loss', 'eval'],
  );
  off();
  st.onLoss(loss({ step: 3 }));
  t.equal(events.length, 4, 'unsubscribed');
  const snap = JSON.parse(JSON.stringify(st.snapshot())) as ReturnType<MonitorState['snapshot']>;
  t.equal(snap.filter, 'j');
  t.equal(snap.rejected, 1);
  t.equal(st.lastRejection, 'bad');
  t.equal(snap.jobs.length, 1);
  const [job] = snap.jobs;
  t.same(
    job.ranks.map((r) => r.rank),
    [0, 1],
    'ranks in order',
  );
  t.equal(job.ranks[0].step, 3);
  t.same(
    job.ranks[0].points,
    [
      [1, 3],
      [3, 1],
    ],
    'NaN loss not plotted',
  );
  t.same(job.eval, { step: 2, ts: 5, final: true, metrics: { rmse: 0.9, 'ndcg@10': null } });
  t.same(job.metrics.rmse.points, [[2, 0.9]]);
  t.same(job.metrics['ndcg@10'].points, []);
  t.equal(job.strategy, 'ps');
  t.equal(st.job('j')?.ranks.size, 2);
  st.onLoss(loss({ step: 4, loss: Number.NaN, timing: { computeMs: 1, serdeMs: 2, waitMs: 3 } }));
  t.equal(st.snapshot().jobs[0].ranks[0].loss, null);
  t.same(st.snapshot().jobs[0].ranks[0].timing, { computeMs: 1, serdeMs: 2, waitMs: 3 });
});

t.test('state: all jobs, most recent first, least recently updated forgotten beyond maxJobs', async (t) => {
  let now = 0;
  const st = new MonitorState({ maxJobs: 2, now: () => ++now });
  t.ok(st.accepts('anything'));
  st.onLoss(loss({ job: 'a' }));
  st.onLoss(loss({ job: 'b' }));
  st.onLoss(loss({ job: 'a' }));
  st.onEval({ job: 'c', step: 1, metrics: { rmse: 1 }, ts: 1 });
  t.same(
    st.jobs().map((j) => j.job),
    ['c', 'a'],
    'b was the least recently updated',
  );
  t.equal(st.snapshot().filter, null);
  const { loss: ls } = demoReports('d', { ranks: 3, steps: 10 });
  ls.forEach((l) => st.onLoss(l));
  t.equal(st.job('d')?.ranks.size, 3);
});
