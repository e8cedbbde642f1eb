// The search's results: sorted by the headline metric, as a table, the best setting with the
// command that reruns it, and tune.json.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { settingArgs, type Setting, type TunePlan } from './search.ts';
import type { TrialResult } from './trials.ts';

/** The metrics that headline a job, in this order (as the launcher's progress shows them). */
export const HEADLINE = ['rmse', 'mae', 'accuracy', 'bce', 'ndcg@10', 'recall@20', 'hr@10', 'mrr'];

/** Lower is better for errors and losses; higher for the rest (accuracy, ndcg, recall, …). */
export function lowerIsBetter(metric: string): boolean {
  return /^(rmse|mae|mse|bce|loss|logloss|nll|perplexity)\b/.test(metric) || /loss$/i.test(metric);
}

export class TuneResultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TuneResultError';
  }
}

/** The metric to sort by: the asked one (which some job must report), else the first headline metric reported. */
export function pickMetric(results: readonly TrialResult[], asked: string | undefined): string | undefined {
  const reported = new Set(results.flatMap((r) => Object.keys(r.metrics ?? {})));
  if (asked !== undefined) {
    if (reported.size > 0 && !reported.has(asked)) throw new TuneResultError(`--metric ${asked}: no job reported it; they report ${[...reported].join(', ')}`);
    return asked;
  }
  return HEADLINE.find((m) => reported.has(m)) ?? [...reported][0];
}

/** Finished jobs best first by `metric`, then the failed ones (in their order). */
export function rank(results: readonly TrialResult[], metric: string | undefined): TrialResult[] {
  if (metric === undefined) return [...results];
  const sign = lowerIsBetter(metric) ? 1 : -1;
  const score = (r: TrialResult): number => {
    const v = r.status === 'ok' ? r.metrics?.[metric] : undefined;
    return v !== undefined ? sign * v : Number.POSITIVE_INFINITY;
  };
  return [...results].sort((a, b) => score(a) - score(b) || a.index - b.index);
}

const fmt = (v: number | undefined): string => (v === undefined ? '–' : Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(4));

/** A plain-text table: one row per job, best first. */
export function resultsTable(plan: Pick<TunePlan, 'grid'>, ranked: readonly TrialResult[], metric: string | undefined): string {
  const keys = plan.grid.map((g) => g.key);
  const others = HEADLINE.filter((m) => m !== metric && ranked.some((r) => r.metrics?.[m] !== undefined)).slice(0, 2);
  const header = ['#', ...keys, ...(metric !== undefined ? [metric] : []), ...others, 'seconds', 'job'];
  const rows = ranked.map((r, i) => [
    r.status === 'ok' ? String(i + 1) : '✗',
    ...keys.map((k) => r.setting[k] ?? ''),
    ...(metric !== undefined ? [r.status === 'ok' ? `${fmt(r.metrics?.[metric])}${r.std?.[metric] !== undefined ? ` ± ${fmt(r.std[metric])}` : ''}` : `failed: ${r.error ?? ''}`] : []),
    ...others.map((m) => fmt(r.metrics?.[m])),
    r.seconds.toFixed(1),
    r.job,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export interface TuneSummary {
  readonly id: string;
  readonly model: string;
  readonly metric?: string;
  readonly direction?: 'lower' | 'higher';
  readonly grid: TunePlan['grid'];
  readonly jobArgs: readonly string[];
  readonly best?: { readonly job: string; readonly setting: Setting; readonly value: number; readonly std?: number; readonly command: string };
  readonly trials: readonly TrialResult[];
}

/** tune.json's content: the plan, every trial (best first) and the best setting with its command. */
export function summarize(plan: TunePlan, results: readonly TrialResult[]): TuneSummary {
  const metric = pickMetric(results, plan.metric);
  const ranked = rank(results, metric);
  const top = ranked[0];
  const value = metric !== undefined && top?.status === 'ok' ? top.metrics?.[metric] : undefined;
  return {
    id: plan.id,
    model: plan.model,
    ...(metric !== undefined ? { metric, direction: lowerIsBetter(metric) ? ('lower' as const) : ('higher' as const) } : {}),
    grid: plan.grid,
    jobArgs: plan.jobArgs,
    ...(top !== undefined && value !== undefined
      ? {
          best: {
            job: top.job,
            setting: top.setting,
            value,
            ...(top.std?.[metric ?? ''] !== undefined ? { std: top.std[metric ?? ''] } : {}),
            command: `npx nx run job -- ${[...plan.jobArgs, ...settingArgs(top.setting)].join(' ')}`,
          },
        }
      : {}),
    trials: ranked,
  };
}

export function writeTuneJson(file: string, summary: TuneSummary): void {
  writeFileSync(resolve(file), `${JSON.stringify(summary, null, 2)}\n`);
}
