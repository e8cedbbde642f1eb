// Terminal views of the monitor state: a live screen (sparklines and an ASCII curve of the loss
// per rank, latest step, ex/s, backend, latest eval metrics), redrawn a few times a second when
// something changed; and, when stdout is not a terminal, one compact line per job per second.
import type { Point } from './series.ts';
import type { ConnectionState, JobState, MonitorState } from './state.ts';

/** What the views say about the monitor's own NATS connection when it is not up. */
export function connectionNote(c: ConnectionState): string {
  return c === 'connected' ? '' : c === 'closed' ? 'NATS connection closed' : 'NATS disconnected, reconnecting…';
}

const BLOCKS = '▁▂▃▄▅▆▇█';
const RANK_MARKS = '0123456789abcdefghijklmnopqrstuvwxyz';
// Distinct ANSI colours per rank (cycled).
const RANK_COLOURS = [36, 33, 35, 32, 34, 31, 96, 93];
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Visible width of a string (ANSI escapes excluded). */
export function visibleLength(s: string): number {
  return [...s.replace(ANSI, '')].length;
}

/** Truncates to `cols` visible characters, keeping ANSI escapes (and resetting colour if cut). */
export function fit(line: string, cols: number): string {
  if (visibleLength(line) <= cols) return line;
  let out = '';
  let visible = 0;
  let i = 0;
  while (i < line.length && visible < Math.max(0, cols - 1)) {
    ANSI.lastIndex = i;
    const m = ANSI.exec(line);
    if (m !== null && m.index === i) {
      out += m[0];
      i += m[0].length;
      continue;
    }
    const ch = String.fromCodePoint(line.codePointAt(i) ?? 32);
    out += ch;
    i += ch.length;
    visible++;
  }
  return `${out}…${line.includes('\x1b[') ? '\x1b[0m' : ''}`;
}

/** Means of `values` in `width` equal buckets (or the values themselves when they fit). */
export function resample(values: readonly number[], width: number): number[] {
  if (values.length <= width) return [...values];
  const out: number[] = [];
  for (let b = 0; b < width; b++) {
    const lo = Math.floor((b * values.length) / width);
    const hi = Math.floor(((b + 1) * values.length) / width);
    let sum = 0;
    for (let i = lo; i < hi; i++) sum += values[i];
    out.push(sum / (hi - lo));
  }
  return out;
}

/** A one-line chart of `values` squeezed into `width` characters. */
export function sparkline(values: readonly number[], width: number): string {
  const v = resample(values.filter(Number.isFinite), Math.max(1, width));
  if (v.length === 0) return '';
  const min = Math.min(...v);
  const max = Math.max(...v);
  return v.map((x) => BLOCKS[max === min ? 3 : Math.round(((x - min) / (max - min)) * (BLOCKS.length - 1))]).join('');
}

/**
 * A multi-line chart: each series drawn with its mark over a shared step (x) and value (y) range,
 * with the y range on the left. Returns `height` lines of at most `width` characters.
 */
export function lineChart(series: readonly { readonly points: readonly Point[]; readonly mark: string }[], width: number, height: number): string[] {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0 || height < 2) return [];
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const labels = [formatValue(y1), formatValue(y0)];
  const lw = Math.max(...labels.map((l) => l.length));
  const plotW = Math.max(4, width - lw - 2);
  const grid: string[][] = Array.from({ length: height }, () => Array<string>(plotW).fill(' '));
  for (const s of series) {
    for (const [x, y] of s.points) {
      const col = x1 === x0 ? plotW - 1 : Math.round(((x - x0) / (x1 - x0)) * (plotW - 1));
      const row = y1 === y0 ? Math.floor(height / 2) : Math.round(((y1 - y) / (y1 - y0)) * (height - 1));
      grid[row][col] = s.mark;
    }
  }
  return grid.map((cells, i) => {
    const label = i === 0 ? labels[0] : i === height - 1 ? labels[1] : '';
    return `${label.padStart(lw)} ┤${cells.join('')}`;
  });
}

/** 4 significant digits, fixed-point for ordinary magnitudes. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return v.toFixed(4);
}

/** Examples per second, compact: 950, 12.3k, 1.20M. */
export function formatRate(v: number): string {
  if (!Number.isFinite(v)) return '?';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Math.round(v).toLocaleString('en-US');
}

export function formatMetrics(metrics: Readonly<Record<string, number>>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${formatValue(v)}`)
    .join(' ');
}

function jobTotals(j: JobState): { step: number; rate: number; active: number; done: number } {
  let step = 0;
  let rate = 0;
  let done = 0;
  for (const r of j.ranks.values()) {
    step = Math.max(step, r.latest.step);
    if (r.latest.done === true) done++;
    rate += r.latest.examplesPerSec;
  }
  return { step, rate, active: j.ranks.size - done, done };
}

export interface ScreenOptions {
  readonly columns: number;
  readonly rows: number;
  readonly url?: string;
  readonly color?: boolean;
  readonly now?: Date;
}

/** The live screen, as lines fitted to the terminal (without the cursor movement). */
export function renderScreen(state: MonitorState, o: ScreenOptions): string[] {
  const cols = Math.max(20, o.columns);
  const colour = (code: number, s: string): string => (o.color === true ? `\x1b[${code}m${s}\x1b[0m` : s);
  const bold = (s: string): string => (o.color === true ? `\x1b[1m${s}\x1b[0m` : s);
  const time = (o.now ?? new Date()).toTimeString().slice(0, 8);
  const lines: string[] = [
    `${bold('actorflow monitor')} · ${state.filter === undefined ? 'all jobs' : `job ${state.filter}`} · ${state.seq} reports` +
      `${state.rejected > 0 ? ` · ${state.rejected} rejected` : ''}${o.url !== undefined ? ` · ${o.url}` : ''} · ${time}` +
      `${state.connection !== 'connected' ? ` · ${colour(31, connectionNote(state.connection))}` : ''}`,
  ];
  const jobs = state.jobs();
  if (jobs.length === 0) lines.push('', `waiting for train.loss / train.eval${state.filter !== undefined ? ` of job ${state.filter}` : ''}…`);
  // A tall curve only when everything fits; sparklines always.
  const fixedRows = 1 + jobs.reduce((n, j) => n + 3 + j.ranks.size, 0);
  const chartHeight = jobs.length === 0 ? 0 : Math.min(12, Math.floor((o.rows - 1 - fixedRows) / jobs.length) - 1);
  for (const j of jobs) {
    const t = jobTotals(j);
    lines.push('');
    lines.push(
      `${bold(`job ${j.job}`)} ${j.status === 'live' ? colour(32, '[live]') : colour(90, '[stopped]')}  ${j.strategy || '?'} · ${j.backend || '?'} · ${j.ranks.size} rank(s)${t.done > 0 ? ` (${t.done} done)` : ''}` +
        ` · step ${t.step} · ${formatRate(t.rate)} ex/s`,
    );
    const ranks = [...j.ranks.values()].sort((a, b) => a.rank - b.rank);
    if (chartHeight >= 3) {
      const series = ranks.map((r, i) => ({ points: r.loss.points(), mark: RANK_MARKS[i % RANK_MARKS.length] }));
      for (const l of lineChart(series, cols - 2, chartHeight)) {
        lines.push(`  ${o.color === true ? l.replace(/[0-9a-z](?=[^┤]*$)/g, (m) => colour(RANK_COLOURS[RANK_MARKS.indexOf(m) % RANK_COLOURS.length], m)) : l}`);
      }
    }
    for (const [i, r] of ranks.entries()) {
      const l = r.latest;
      const tail = ` step ${String(l.step).padStart(6)} ep ${l.epoch} loss ${formatValue(l.loss).padStart(7)} ${formatRate(l.examplesPerSec).padStart(7)} ex/s${l.done === true ? ' done' : ''}`;
      const head = `  r${String(r.rank).padEnd(3)}`;
      const w = Math.max(8, cols - head.length - tail.length - 1);
      const spark = sparkline(r.loss.lastValues(w * 8), w).padEnd(w);
      lines.push(`${head}${colour(RANK_COLOURS[i % RANK_COLOURS.length], spark)}${tail}`);
    }
    if (j.lastEval !== undefined) {
      const e = j.lastEval;
      lines.push(`  eval @ step ${e.step}${e.final === true ? ' (final)' : ''}: ${formatMetrics(e.metrics)}`);
    } else {
      lines.push('  eval: none yet');
    }
  }
  return lines.slice(0, Math.max(1, o.rows - 1)).map((l) => fit(l, cols));
}

/** One compact line for a job (non-TTY mode). */
export function plainLine(j: JobState): string {
  const t = jobTotals(j);
  const ranks = [...j.ranks.values()].sort((a, b) => a.rank - b.rank);
  const losses = ranks.map((r) => `r${r.rank} ${formatValue(r.latest.loss)}${r.latest.done === true ? ' done' : ''}`).join(', ');
  const ev = j.lastEval === undefined ? '' : ` | eval @ ${j.lastEval.step}${j.lastEval.final === true ? ' final' : ''}: ${formatMetrics(j.lastEval.metrics)}`;
  return `[${j.job}]${j.status === 'stopped' ? ' stopped' : ''} ${j.strategy || '?'}/${j.backend || '?'} step ${t.step} | loss ${losses || '-'} | ${formatRate(t.rate)} ex/s${ev}`;
}

export interface Output {
  write(s: string): unknown;
  readonly columns?: number;
  readonly rows?: number;
}

export interface LiveViewOptions {
  /** Redraw the screen (true) or print compact lines (false). */
  readonly tty: boolean;
  /** Default 250 ms on a terminal, 1000 ms otherwise. */
  readonly intervalMs?: number;
  readonly url?: string;
  readonly color?: boolean;
}

/** Redraws (or prints lines) on a timer, only when new reports arrived since the last time. */
export class LiveView {
  readonly #state: MonitorState;
  readonly #out: Output;
  readonly #o: LiveViewOptions;
  #timer: NodeJS.Timeout | undefined;
  #drawnSeq = -1;
  #drawnRejected = 0;
  #drawnConnection: ConnectionState = 'connected';
  #lastTick = 0;

  constructor(state: MonitorState, out: Output, o: LiveViewOptions) {
    this.#state = state;
    this.#out = out;
    this.#o = o;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    if (this.#o.tty) this.#out.write('\x1b[2J\x1b[?25l'); // clear once, hide the cursor while redrawing
    this.tick();
    this.#timer = setInterval(() => this.tick(), this.#o.intervalMs ?? (this.#o.tty ? 250 : 1000));
    this.#timer.unref();
  }

  /** Draws once if anything changed (called by the timer; public for tests). */
  tick(): void {
    const s = this.#state;
    const since = this.#lastTick;
    this.#lastTick = s.now();
    if (s.version === this.#drawnSeq && s.rejected === this.#drawnRejected) return;
    const first = this.#drawnSeq < 0;
    this.#drawnSeq = s.version;
    this.#drawnRejected = s.rejected;
    if (this.#o.tty) {
      const lines = renderScreen(s, {
        columns: this.#out.columns ?? 100,
        rows: this.#out.rows ?? 40,
        color: this.#o.color ?? true,
        ...(this.#o.url !== undefined ? { url: this.#o.url } : {}),
      });
      this.#out.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`);
      return;
    }
    if (s.connection !== this.#drawnConnection) {
      this.#drawnConnection = s.connection;
      this.#out.write(`monitor: ${s.connection === 'connected' ? 'NATS connected again' : connectionNote(s.connection)}\n`);
    }
    if (first && s.seq === 0 && s.jobs().length === 0) {
      this.#out.write(`waiting for train.loss / train.eval${s.filter !== undefined ? ` of job ${s.filter}` : ''}\n`);
      return;
    }
    for (const j of s.jobs()) if (j.updatedAt >= since || j.statusChangedAt >= since) this.#out.write(`${plainLine(j)}\n`);
  }

  /** Forces the next tick to draw (e.g. after the terminal was resized). */
  invalidate(): void {
    this.#drawnSeq = -2;
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#drawnSeq = -2; // force a last frame / line
    this.tick();
    if (this.#o.tty) this.#out.write('\x1b[?25h');
  }
}
