// The monitor's web page: one self-contained HTML document (inline CSS and script, no network
// beyond its own server). It opens `/events`, whose first event is the same snapshot `/state`
// serves (so a page opened late shows the history), then applies batches of reports and redraws
// the charts on <canvas> at most once per animation frame. The bounded-history rule of
// src/series.ts is repeated in the script so the page's memory stays bounded too.
//
// Hooks for tests and scripts: `#status[data-state]` (connecting | live | reconnecting | nats-down:
// `live` only while both the page's stream and the monitor's NATS connection are up),
// `body[data-seq]` (reports applied), `section.job[data-job][data-status]` (live | stopped) and its
// `.job-status` badge, `tr[data-rank] .loss`,
// `canvas.loss-chart[data-points]`, `figure.metric[data-metric] .value`.

const script = String.raw`
'use strict';
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
let maxPoints = 5000;
let seq = 0;
const jobs = new Map();
const dirty = new Set();
let frame = 0;
let streamOpen = false;
let nats = 'connected';

class Series {
  constructor(max, points, stride) {
    this.max = max; this.pts = points ? points.map((p) => [p[0], p[1]]) : []; this.stride = stride || 1;
    this.n = 0; this.sum = 0; this.x = 0;
  }
  push(x, y) {
    if (typeof y !== 'number' || !Number.isFinite(y) || !Number.isFinite(x)) return;
    this.n++; this.sum += y; this.x = x;
    if (this.n < this.stride) return;
    this.pts.push([this.x, this.sum / this.n]); this.n = 0; this.sum = 0;
    if (this.pts.length > this.max) {
      const m = [];
      for (let i = 0; i + 1 < this.pts.length; i += 2) m.push([this.pts[i + 1][0], (this.pts[i][1] + this.pts[i + 1][1]) / 2]);
      if (this.pts.length % 2 === 1) m.push(this.pts[this.pts.length - 1]);
      this.pts = m; this.stride *= 2;
    }
  }
  points() { return this.n > 0 ? this.pts.concat([[this.x, this.sum / this.n]]) : this.pts; }
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : v.toFixed(4);
}
function fmtAxis(v, step) {
  if (Math.abs(v) >= 1e6 || step < 1e-4) return v.toExponential(1);
  const mant = step / Math.pow(10, Math.floor(Math.log10(step)));
  return v.toFixed(Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)) + (Math.abs(mant - 2.5) < 1e-9 ? 1 : 0));
}
function niceTicks(lo, hi, n) {
  const raw = (hi - lo) / Math.max(1, n);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) || 10 * p;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { step, ticks };
}
function rate(v) {
  if (!Number.isFinite(v)) return '?';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Math.round(v).toLocaleString('en-US');
}
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function jobOf(id) {
  let j = jobs.get(id);
  if (j) return j;
  const lossCanvas = el('canvas', { class: 'loss-chart', 'data-points': '0' });
  const rows = el('tbody');
  const metricsGrid = el('div', { class: 'metrics' });
  const meta = el('span', { class: 'meta' });
  const badge = el('span', { class: 'job-status', 'data-status': 'live' }, 'live');
  const evalLine = el('p', { class: 'eval-line' }, 'no evaluation yet');
  const section = el('section', { class: 'job', 'data-job': id, 'data-status': 'live' },
    el('h2', {}, el('span', { class: 'job-id' }, 'job ' + id), badge, meta),
    el('div', { class: 'panels' },
      el('figure', { class: 'panel' }, el('figcaption', {}, 'training loss per rank'), lossCanvas),
      el('div', { class: 'panel' },
        el('table', { class: 'ranks' },
          el('thead', {}, el('tr', {}, ...['rank', 'step', 'epoch', 'loss', 'ex/s', ''].map((h) => el('th', {}, h)))), rows))),
    el('h3', {}, 'evaluation'), evalLine, metricsGrid);
  const list = document.getElementById('jobs');
  list.prepend(section);
  document.getElementById('empty').hidden = true;
  j = { id, section, lossCanvas, rows, metricsGrid, meta, badge, evalLine, strategy: '', backend: '', ranks: new Map(), metrics: new Map(), lastEval: null };
  jobs.set(id, j);
  return j;
}

function rankOf(j, rank, view) {
  let r = j.ranks.get(rank);
  if (r) return r;
  const colour = COLOURS[[...j.ranks.keys(), rank].sort((a, b) => a - b).indexOf(rank) % COLOURS.length];
  const cells = { step: el('td', { class: 'step' }), epoch: el('td', { class: 'epoch' }), loss: el('td', { class: 'loss' }), eps: el('td', { class: 'eps' }), state: el('td', { class: 'state' }) };
  const swatch = el('span', { class: 'swatch' });
  swatch.style.background = colour;
  const tr = el('tr', { 'data-rank': String(rank) }, el('td', {}, swatch, 'r' + rank), cells.step, cells.epoch, cells.loss, cells.eps, cells.state);
  const after = [...j.rows.children].find((row) => Number(row.dataset.rank) > rank);
  j.rows.insertBefore(tr, after || null);
  r = { rank, colour, cells, series: new Series(maxPoints, view ? view.points : null, view ? view.stride : 1), latest: null };
  j.ranks.set(rank, r);
  return r;
}

function metricOf(j, name, view) {
  let m = j.metrics.get(name);
  if (m) return m;
  const canvas = el('canvas', { class: 'metric-chart', 'data-points': '0' });
  const value = el('b', { class: 'value' }, '');
  const fig = el('figure', { class: 'metric', 'data-metric': name }, el('figcaption', {}, name + ' ', value), canvas);
  j.metricsGrid.append(fig);
  m = { name, canvas, value, series: new Series(maxPoints, view ? view.points : null, view ? view.stride : 1) };
  j.metrics.set(name, m);
  return m;
}

function setLatest(j, r, latest) {
  r.latest = latest;
  r.cells.step.textContent = String(latest.step);
  r.cells.epoch.textContent = String(latest.epoch);
  r.cells.loss.textContent = fmt(latest.loss);
  r.cells.eps.textContent = rate(latest.examplesPerSec);
  r.cells.state.textContent = latest.done ? 'done' : '';
  dirty.add(j);
}

function setEval(j, e) {
  j.lastEval = e;
  j.evalLine.textContent = 'latest @ step ' + e.step + (e.final ? ' (final)' : '');
  for (const [name, v] of Object.entries(e.metrics)) metricOf(j, name).value.textContent = fmt(v);
  dirty.add(j);
}

function setMeta(j) {
  let step = 0, eps = 0, done = 0;
  for (const r of j.ranks.values()) {
    if (!r.latest) continue;
    step = Math.max(step, r.latest.step);
    if (r.latest.done) done++;
    eps += r.latest.examplesPerSec;
  }
  j.meta.textContent = [j.strategy || '?', j.backend || '?', j.ranks.size + ' rank' + (j.ranks.size === 1 ? '' : 's') + (done ? ' (' + done + ' done)' : ''), 'step ' + step, rate(eps) + ' ex/s'].join(' · ');
}

function setJobStatus(j, v) {
  j.section.dataset.status = v.status;
  j.badge.dataset.status = v.status;
  j.badge.textContent = v.status === 'live' ? 'live' + (v.actors > 0 ? ' · ' + v.actors + ' actor' + (v.actors === 1 ? '' : 's') : '') : 'stopped';
  j.badge.title = 'last sign of life ' + new Date(v.lastSeen).toLocaleTimeString();
}

function loadSnapshot(s) {
  maxPoints = s.maxPoints;
  seq = s.seq;
  nats = s.connection;
  for (const j of jobs.values()) j.section.remove();
  jobs.clear();
  document.getElementById('filter').textContent = s.filter === null ? 'all jobs' : 'job ' + s.filter;
  document.getElementById('empty').hidden = s.jobs.length > 0;
  for (const v of [...s.jobs].reverse()) {
    const j = jobOf(v.job);
    j.strategy = v.strategy; j.backend = v.backend;
    for (const rv of v.ranks) setLatest(j, rankOf(j, rv.rank, rv), rv);
    for (const [name, sv] of Object.entries(v.metrics)) metricOf(j, name, sv);
    if (v.eval) setEval(j, v.eval);
    setJobStatus(j, v);
    setMeta(j);
  }
  schedule();
}

function applyLoss(r) {
  const j = jobOf(r.job);
  j.strategy = r.strategy; j.backend = r.backend;
  const rank = rankOf(j, r.rank);
  rank.series.push(r.step, r.loss);
  setLatest(j, rank, r);
  setMeta(j);
}

function applyEval(e) {
  const j = jobOf(e.job);
  for (const [name, v] of Object.entries(e.metrics)) metricOf(j, name).series.push(e.step, v);
  setEval(j, e);
}

function draw(canvas, series, opts) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  let n = 0, x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) for (const [x, y] of s.points) { n++; if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; }
  canvas.dataset.points = String(n);
  canvas.dataset.series = String(series.length);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#667';
  if (n === 0) { ctx.fillText('no data yet', 8, h / 2); return; }
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.05 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const L = opts.compact ? 44 : 56, R = 10, T = 8, B = opts.compact ? 18 : 22;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (w - L - R);
  const Y = (y) => T + ((y1 - y) / (y1 - y0)) * (h - T - B);
  ctx.strokeStyle = '#e3e6ec'; ctx.lineWidth = 1; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
  const yt = niceTicks(y0, y1, opts.compact ? 4 : 5);
  for (const v of yt.ticks) {
    const py = Math.round(Y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(L, py); ctx.lineTo(w - R, py); ctx.stroke();
    ctx.fillText(fmtAxis(v, yt.step), L - 6, py);
  }
  ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  for (const v of niceTicks(x0, x1, opts.compact ? 4 : 6).ticks) ctx.fillText(String(Math.round(v)), X(v), h - B + 4);
  ctx.strokeStyle = '#b8bec9'; ctx.beginPath(); ctx.moveTo(L + 0.5, T); ctx.lineTo(L + 0.5, h - B + 0.5); ctx.lineTo(w - R, h - B + 0.5); ctx.stroke();
  for (const s of series) {
    ctx.strokeStyle = s.colour; ctx.lineWidth = 1.6; ctx.beginPath();
    s.points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(X(x), Y(y)) : ctx.lineTo(X(x), Y(y))));
    ctx.stroke();
    if (s.points.length === 1 || opts.dots) {
      ctx.fillStyle = s.colour;
      for (const [x, y] of s.points) { ctx.beginPath(); ctx.arc(X(x), Y(y), 2.5, 0, Math.PI * 2); ctx.fill(); }
    }
  }
}

function render() {
  frame = 0;
  for (const j of dirty) {
    draw(j.lossCanvas, [...j.ranks.values()].map((r) => ({ colour: r.colour, points: r.series.points() })), {});
    for (const m of j.metrics.values()) draw(m.canvas, [{ colour: '#3b5bdb', points: m.series.points() }], { compact: true, dots: true });
  }
  dirty.clear();
  document.body.dataset.seq = String(seq);
  document.getElementById('seq').textContent = seq + ' reports';
}
function schedule() { if (!frame) frame = requestAnimationFrame(render); }
window.addEventListener('resize', () => { for (const j of jobs.values()) dirty.add(j); schedule(); });

function setStatus(state, text) {
  const s = document.getElementById('status');
  s.dataset.state = state; s.textContent = text;
}
// 'live' only while this page's stream is open AND the monitor itself is connected to NATS.
function showConnection() {
  if (!streamOpen) setStatus('reconnecting', 'reconnecting…');
  else if (nats === 'connected') setStatus('live', 'live');
  else setStatus('nats-down', nats === 'closed' ? 'NATS connection closed' : 'NATS disconnected');
}
const events = new EventSource('events');
events.addEventListener('error', () => { streamOpen = false; showConnection(); });
events.addEventListener('snapshot', (e) => { loadSnapshot(JSON.parse(e.data)); streamOpen = true; showConnection(); });
events.addEventListener('update', (e) => {
  const u = JSON.parse(e.data);
  for (const r of u.loss) applyLoss(r);
  for (const r of u.eval) applyEval(r);
  for (const v of u.status || []) { const j = jobOf(v.job); setJobStatus(j, v); setMeta(j); }
  if (u.connection) { nats = u.connection; showConnection(); }
  seq = u.seq;
  schedule();
});
`;

const style = `
:root { color-scheme: light; --fg: #1d2330; --muted: #667085; --line: #e3e6ec; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; background: #1d2330; color: #fff; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; }
header .sub { color: #b8c0cc; }
#status { margin-left: auto; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #555; }
#status[data-state=live] { background: #2f9e44; }
#status[data-state=reconnecting] { background: #e8590c; }
#status[data-state=nats-down] { background: #c92a2a; }
.job-status { font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 9px; color: #fff; background: #2f9e44; }
.job-status[data-status=stopped] { background: #868e96; }
section.job[data-status=stopped] { opacity: .75; }
main { padding: 8px 20px 20px; }
#empty { color: var(--muted); }
section.job { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 12px 0; }
section.job h2 { font-size: 16px; margin: 0 0 8px; display: flex; gap: 12px; align-items: baseline; }
section.job h2 .meta { font-size: 13px; font-weight: normal; color: var(--muted); }
section.job h3 { font-size: 13px; margin: 10px 0 2px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.panels { display: grid; grid-template-columns: minmax(0, 2fr) minmax(260px, 1fr); gap: 16px; align-items: start; }
figure { margin: 0; }
figcaption { font-size: 12px; color: var(--muted); margin-bottom: 2px; }
canvas.loss-chart { width: 100%; height: 260px; display: block; }
table.ranks { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 13px; }
table.ranks th, table.ranks td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); }
table.ranks th:first-child, table.ranks td:first-child { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.eval-line { margin: 0 0 6px; color: var(--muted); font-size: 12px; }
.metrics { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
.metric figcaption b { color: var(--fg); font-variant-numeric: tabular-nums; }
canvas.metric-chart { width: 100%; height: 110px; display: block; }
`;

/** The page, complete (no external resources). */
export function pageHtml(title = 'actorflow monitor'): string {
  const safeTitle = title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${safeTitle}</title>
<style>${style}</style>
</head>
<body data-seq="0">
<header><h1>${safeTitle}</h1><span class="sub" id="filter"></span><span class="sub" id="seq"></span><span id="status" data-state="connecting">connecting…</span></header>
<main id="jobs"><p id="empty">Waiting for <code>train.loss</code> / <code>train.eval</code> reports…</p></main>
<script>${script}</script>
</body>
</html>
`;
}
