import t from 'tap';
import { MonitorState } from '../src/state.ts';
import { LiveView, fit, formatRate, formatValue, lineChart, plainLine, renderScreen, resample, sparkline, visibleLength } from '../src/render.ts';
import { demoReports } from './helpers.ts';

const strip = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

function filled(job = 'j', o = {}): MonitorState {
  const st = new MonitorState();
  const r = demoReports(job, { ranks: 2, steps: 100, evalEvery: 50, ...o });
  r.loss.forEach((l) => st.onLoss(l));
  r.evals.forEach((e) => st.onEval(e));
  return st;
}

t.test('formatting helpers', async (t) => {
  t.equal(formatValue(0.123456), '0.1235');
  t.equal(formatValue(Number.NaN), 'NaN');
  t.equal(formatValue(null), 'NaN');
  t.equal(formatValue(Number.POSITIVE_INFINITY), 'inf');
  t.equal(formatValue(Number.NEGATIVE_INFINITY), '-inf');
  t.equal(formatValue(123456), '1.23e+5');
  t.equal(formatValue(0.0001), '1.00e-4');
  t.equal(formatValue(0), '0.0000');
  t.equal(formatRate(950.4), '950');
  t.equal(formatRate(12_345), '12.3k');
  t.equal(formatRate(1_200_000), '1.20M');
  t.equal(formatRate(Number.NaN), '?');
  t.same(resample([1, 2, 3, 4], 2), [1.5, 3.5]);
  t.same(resample([1, 2], 5), [1, 2]);
  t.equal(sparkline([1, 2, 3, 4, 5, 6, 7, 8], 8), '▁▂▃▄▅▆▇█');
  t.equal(sparkline([2, 2, 2], 3), '▄▄▄');
  t.equal(sparkline([Number.NaN], 3), '');
  t.equal(
    sparkline(
      Array.from({ length: 100 }, (_, i) => 100 - i),
      10,
    ).length,
    10,
  );
  t.equal(visibleLength('\x1b[31mab\x1b[0m'), 2);
  t.equal(fit('abcdef', 4), 'abc…');
  t.equal(fit('abc', 4), 'abc');
  t.equal(strip(fit('\x1b[31mabcdef\x1b[0m', 4)), 'abc…');
  t.match(fit('\x1b[31mabcdef\x1b[0m', 4), /\x1b\[0m$/);
  const chart = lineChart(
    [
      {
        points: [
          [0, 1],
          [10, 0],
        ],
        mark: '0',
      },
      { points: [[5, 0.5]], mark: '1' },
    ],
    20,
    3,
  );
  t.equal(chart.length, 3);
  t.match(chart[0], /^1\.0000 ┤0/);
  t.match(chart[1], /1/);
  t.match(chart[2], /^0\.0000 ┤ +0$/);
  t.same(lineChart([], 10, 3), []);
  t.equal(
    lineChart([{ points: [[1, 1]], mark: 'x' }], 10, 3)[1]
      .trim()
      .endsWith('x'),
    true,
    'a single point',
  );
});

t.test('screen: header, curve, sparkline per rank, eval line, fitted to the terminal', async (t) => {
  const st = filled('mf');
  st.reject('junk');
  const lines = renderScreen(st, { columns: 120, rows: 40, url: 'http://127.0.0.1:8686/', now: new Date(2024, 0, 1, 12, 3, 4) });
  const text = lines.join('\n');
  t.match(lines[0], /^actorflow monitor · all jobs · 202 reports · 1 rejected · http:\/\/127\.0\.0\.1:8686\/ · 12:03:04$/);
  t.match(text, /job mf \[live\] {2}mirrored · wasm · 2 rank\(s\) · step 100 · \d+\.\dk ex\/s/);
  t.match(text, /\n {2}r0 {2}[▁▂▃▄▅▆▇█ ]+ step +100 ep 1 loss +\d\.\d{4} +\d/);
  t.match(text, /eval @ step 100: rmse \d\.\d{4} mae 0\.\d{4} ndcg@10 0\.\d{4}/);
  t.match(text, /┤/, 'a tall curve when there is room');
  t.ok(lines.every((l) => visibleLength(l) <= 120));
  t.ok(
    renderScreen(st, { columns: 50, rows: 40 }).every((l) => visibleLength(l) <= 50),
    'fitted to a narrow terminal',
  );
  const small = renderScreen(st, { columns: 60, rows: 8 });
  t.ok(small.length <= 7, 'never more lines than the terminal has');
  t.notMatch(small.join('\n'), /┤/, 'no curve without room');
  const coloured = renderScreen(st, { columns: 90, rows: 40, color: true });
  t.match(coloured.join('\n'), /\x1b\[36m/);
  t.equal(strip(coloured[0]).slice(0, 17), 'actorflow monitor');
  const empty = renderScreen(new MonitorState({ job: 'x' }), { columns: 80, rows: 20 });
  t.match(empty.join('\n'), /waiting for train\.loss \/ train\.eval of job x/);
  const done = new MonitorState();
  done.onLoss({ ...demoReports('d', { ranks: 1, steps: 1 }).loss[0], done: true });
  const dl = renderScreen(done, { columns: 100, rows: 30 }).join('\n');
  t.match(dl, /1 rank\(s\) \(1 done\)/);
  t.match(dl, /ex\/s done/);
  t.match(dl, /eval: none yet/);
});

t.test('plain lines and the live view', async (t) => {
  const st = filled('mf');
  const j = st.job('mf');
  t.ok(j);
  if (j === undefined) return;
  t.match(plainLine(j), /^\[mf\] mirrored\/wasm step 100 \| loss r0 \d\.\d{4}, r1 \d\.\d{4} \| [\d.]+k ex\/s \| eval @ 100: rmse/);
  const out: string[] = [];
  const view = new LiveView(st, { write: (s: string) => out.push(s) }, { tty: false, intervalMs: 10_000 });
  view.start();
  view.start(); // idempotent
  t.equal(out.length, 1);
  t.match(out[0], /^\[mf\] /);
  view.tick();
  t.equal(out.length, 1, 'nothing new, nothing printed');
  st.onEval({ job: 'mf', step: 101, metrics: { rmse: 0.5 }, ts: 1, final: true });
  view.tick();
  t.match(out[1], /eval @ 101 final: rmse 0\.5000/);
  view.stop();
  view.stop();

  const waiting: string[] = [];
  const wv = new LiveView(new MonitorState({ job: 'z' }), { write: (s: string) => waiting.push(s) }, { tty: false });
  wv.start();
  wv.stop();
  t.match(waiting[0], /waiting for train\.loss \/ train\.eval of job z/);

  const screen: string[] = [];
  const tv = new LiveView(st, { write: (s: string) => screen.push(s), columns: 80, rows: 30 }, { tty: true, url: 'http://x/', color: false });
  tv.start();
  t.match(screen[0], /\x1b\[2J\x1b\[\?25l/, 'clears once and hides the cursor');
  t.match(screen[1], /^\x1b\[H.*http:\/\/x\//);
  tv.tick();
  t.equal(screen.length, 2);
  tv.invalidate();
  tv.tick();
  t.equal(screen.length, 3, 'redrawn after invalidate');
  tv.stop();
  t.equal(screen.at(-1), '\x1b[?25h', 'cursor shown again');
});

t.test('stopped jobs and a lost NATS connection are shown, on screen and in plain lines', async (t) => {
  let now = 5_000_000;
  const st = new MonitorState({ staleMs: 10_000, now: () => now });
  const a = demoReports('job-a', { ranks: 1, steps: 5 });
  a.loss.forEach((l) => st.onLoss(l));
  st.onHeartbeat({ job: 'job-b', role: 'trainer', rank: 0, actor: 'trainer-0', ts: 1 });
  const lines: string[] = [];
  const view = new LiveView(st, { write: (s: string) => lines.push(s) }, { tty: false, intervalMs: 60_000 });
  view.tick();
  t.match(lines.join(''), /\[job-b\] \?\/\? step 0/, 'a job known only by heartbeats is listed');
  now += 11_000;
  st.onHeartbeat({ job: 'job-b', role: 'trainer', rank: 0, actor: 'trainer-0', ts: 2 });
  st.sweep();
  t.equal(st.job('job-a')?.status, 'stopped');
  t.match(plainLine(st.job('job-a') as NonNullable<ReturnType<MonitorState['job']>>), /^\[job-a\] stopped mirrored\/wasm step 5/);
  lines.length = 0;
  st.setConnection('reconnecting');
  view.tick();
  const out = lines.join('');
  t.match(out, /monitor: NATS disconnected, reconnecting…/);
  t.match(out, /\[job-a\] stopped/, 'the status change is printed');
  const screen = renderScreen(st, { columns: 160, rows: 40 }).map(strip).join('\n');
  t.match(screen, /NATS disconnected, reconnecting…/);
  t.match(screen, /job job-a \[stopped\]/);
  t.match(screen, /job job-b \[live\]/);
  lines.length = 0;
  st.setConnection('connected');
  view.tick();
  t.match(lines.join(''), /monitor: NATS connected again/);
  st.setConnection('closed');
  t.match(renderScreen(st, { columns: 160, rows: 40 }).map(strip).join('\n'), /NATS connection closed/);
});
