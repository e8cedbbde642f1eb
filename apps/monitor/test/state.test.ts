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

t.test('liveness: heartbeats keep a job live, silence stops it, its return revives it', async (t) => {
  let now = 1_000_000;
  const st = new MonitorState({ staleMs: 10_000, now: () => now });
  const events: MonitorEvent[] = [];
  st.listen((e) => events.push(e));
  t.ok(st.onHeartbeat({ job: 'a', role: 'trainer', rank: 0, actor: 'trainer-0', ts: 1 }), 'a heartbeat creates its job');
  t.equal(st.job('a')?.status, 'live');
  t.same(events.at(-1), { kind: 'status', seq: 0, status: { job: 'a', status: 'live', lastSeen: now, actors: 1 } }, 'pages learn of a job seen by heartbeat only');
  t.notOk(st.onHeartbeat({ job: 'a', role: 'monitor', ts: 1 }), "a monitor's own beat does not count");
  st.onHeartbeat({ job: 'a', role: 'aggregator', ts: 1 }); // no actor name: role(-rank)
  st.onLoss(loss({ job: 'b' }));
  const before = st.version;
  now += 9_000;
  st.onHeartbeat({ job: 'a', role: 'trainer', rank: 0, actor: 'trainer-0', ts: 2 });
  t.same(st.sweep(), [], 'nothing silent for more than 10 s yet');
  now += 2_000;
  const stopped = st.sweep();
  t.same(
    stopped.map((j) => j.job),
    ['b'],
    'b reported 11 s ago and has no heartbeat: stopped',
  );
  t.ok(st.version > before, 'a status change counts as a change for the views');
  t.same(events.at(-1), { kind: 'status', seq: 1, status: { job: 'b', status: 'stopped', lastSeen: 1_000_000, actors: 0 } });
  const snap = st.snapshot();
  t.same(
    snap.jobs.map((j) => [j.job, j.status, j.actors]),
    [
      ['a', 'live', 1],
      ['b', 'stopped', 0],
    ],
    'a: trainer-0 beat 2 s ago (the aggregator 11 s ago does not count)',
  );
  t.equal(snap.staleMs, 10_000);
  now += 10_001;
  t.same(
    st.sweep().map((j) => j.job),
    ['a'],
  );
  t.same(st.sweep(), [], 'stopped once, not again');
  st.onEval({ job: 'a', step: 3, metrics: { rmse: 1 }, ts: 3 });
  t.equal(st.job('a')?.status, 'live', 'a report revives it');
  st.onHeartbeat({ job: 'b', role: 'trainer', rank: 1, ts: 4 });
  t.equal(st.job('b')?.status, 'live', 'a heartbeat revives it');
  t.same(
    events.filter((e) => e.kind === 'status').map((e) => (e.kind === 'status' ? `${e.status.job}:${e.status.status}` : '')),
    ['a:live', 'b:stopped', 'a:stopped', 'a:live', 'b:live'],
  );
  const filtered = new MonitorState({ job: 'a' });
  t.notOk(filtered.onHeartbeat({ job: 'b', role: 'trainer', ts: 1 }), 'other jobs are filtered');
  const stop = filtered.watchLiveness(5);
  stop();
});

t.test('connection state: changes are events, closed is final', async (t) => {
  const st = new MonitorState();
  const events: MonitorEvent[] = [];
  st.listen((e) => events.push(e));
  t.equal(st.connection, 'connected');
  t.equal(st.snapshot().connection, 'connected');
  const v = st.version;
  st.setConnection('connected');
  t.equal(st.version, v, 'no change, no event');
  st.setConnection('reconnecting');
  st.setConnection('connected');
  st.setConnection('closed');
  st.setConnection('connected');
  t.equal(st.connection, 'closed', 'closed stays closed');
  t.same(
    events.map((e) => (e.kind === 'connection' ? e.connection : e.kind)),
    ['reconnecting', 'connected', 'closed'],
  );
});
