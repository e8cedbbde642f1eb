// K-fold cross-validation over whole jobs, like Surprise's cross_validate: `--split kfold:K` with
// `--fold I` runs fold I (0-based) as one job; `--folds all` runs every fold as its own job (under
// <out>/fold-<i>) and reports each metric's mean ± standard deviation over the folds — a table on
// stdout and <out>/folds.json. The split is seeded, so each fold is the same in every process.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseSplitSpec } from '@actorflow/data';
import type { JobPlan } from './flags.ts';
import type { JobResult, LaunchOptions } from './launch.ts';

export const FOLD_FLAG_OPTIONS = {
  fold: { type: 'string' },
  folds: { type: 'string' },
} as const;

export const FOLD_USAGE = `  --fold I                   with --split kfold:K: run fold I (0…K−1) of a seeded K-fold split
  --folds all                with --split kfold:K: run every fold as a job, report mean ± std per metric
                             (a table, and <out>/folds.json; like Surprise's cross_validate)`;

/** What --fold / --folds make of the split: `kfold:K/I` for one fold, or every fold (`folds`: K). */
export function foldFlags(v: { fold?: string; folds?: string }, split: string, fail: (message: string) => Error): { split: string; folds?: number } {
  if (v.fold === undefined && v.folds === undefined) return { split };
  const what = v.fold !== undefined ? `--fold ${v.fold}` : `--folds ${v.folds}`;
  const spec = split.startsWith('kfold:') ? parseSplitSpec(split) : undefined;
  if (spec?.kind !== 'kfold') throw fail(`${what} needs --split kfold:K (a seeded K-fold split), not --split ${split}`);
  if (v.fold !== undefined && v.folds !== undefined) throw fail(`--fold and --folds exclude each other: --fold I runs one fold, --folds all runs every fold`);
  if (split.includes('/')) throw fail(`--split ${split} already names its fold; use --split kfold:${spec.k} with ${what}`);
  if (v.folds !== undefined) {
    if (v.folds !== 'all') throw fail(`--folds takes 'all' (every fold of --split kfold:${spec.k}), got '${v.folds}'; use --fold I for one fold`);
    return { split, folds: spec.k };
  }
  const raw = v.fold ?? '';
  const fold = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(fold) || fold < 0 || fold >= spec.k) throw fail(`--fold must be an integer 0…${spec.k - 1} (folds of --split kfold:${spec.k} count from 0), got '${raw}'`);
  return { split: `kfold:${spec.k}/${fold}` };
}

export interface MetricSummary {
  readonly mean: number;
  /** Population standard deviation over the folds (numpy's std, as Surprise reports it). */
  readonly std: number;
  readonly folds: readonly number[];
}

/** <out>/folds.json. */
export interface FoldsReport {
  readonly job: string;
  readonly model: string;
  readonly split: string;
  readonly seed: number;
  readonly k: number;
  readonly folds: readonly {
    readonly fold: number;
    readonly job: string;
    readonly out: string;
    readonly metrics: Readonly<Record<string, number>>;
    readonly seconds: number;
    readonly bestEpoch?: number;
  }[];
  readonly summary: Readonly<Record<string, MetricSummary>>;
  readonly seconds: number;
}

/** Mean and population std of each metric every fold reports (finite values only). */
export function summarizeFolds(metrics: readonly Readonly<Record<string, number>>[]): Record<string, MetricSummary> {
  const names = metrics.length > 0 ? Object.keys(metrics[0]).filter((k) => metrics.every((m) => typeof m[k] === 'number' && Number.isFinite(m[k]))) : [];
  const out: Record<string, MetricSummary> = {};
  for (const name of names) {
    const xs = metrics.map((m) => m[name]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    out[name] = { mean, std, folds: xs };
  }
  return out;
}

/** The cross_validate-style table: a row per metric (and fit time), a column per fold, mean and std. */
export function formatFoldsTable(report: Pick<FoldsReport, 'folds' | 'summary'>): string {
  const k = report.folds.length;
  const head = ['', ...Array.from({ length: k }, (_, i) => `Fold ${i + 1}`), 'Mean', 'Std'];
  const rows: string[][] = Object.entries(report.summary).map(([name, s]) => [name.toUpperCase(), ...s.folds.map((x) => x.toFixed(4)), s.mean.toFixed(4), s.std.toFixed(4)]);
  const secs = report.folds.map((f) => f.seconds);
  const t = summarizeFolds(secs.map((s) => ({ s })))['s'];
  if (t !== undefined) rows.push(['Fit time (s)', ...secs.map((x) => x.toFixed(1)), t.mean.toFixed(1), t.std.toFixed(1)]);
  const all = [head, ...rows];
  const width = head.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(width[c]) : cell.padStart(width[c]))).join('  ')).join('\n');
}

type Launch = (plan: JobPlan, root: string, log: (line: string) => void, opts: LaunchOptions) => Promise<JobResult>;

/**
 * Runs every fold of `plan` (plan.folds = K) as its own job `<job>-fold<i>` in <out>/fold-<i>, one
 * after the other, then prints the table and writes <out>/folds.json (also after each fold, so a
 * stopped run keeps what it measured). The result's metrics are the means.
 */
export async function runFolds(plan: JobPlan & { readonly folds: number }, root: string, log: (line: string) => void, opts: LaunchOptions, launch: Launch): Promise<JobResult> {
  const started = Date.now();
  const k = plan.folds;
  const out = resolve(root, plan.out);
  mkdirSync(out, { recursive: true });
  const folds: FoldsReport['folds'][number][] = [];
  const report = (): FoldsReport => {
    const summary = summarizeFolds(folds.map((f) => f.metrics));
    return { job: plan.job, model: plan.model, split: plan.split, seed: plan.seed, k, folds, summary, seconds: (Date.now() - started) / 1000 };
  };
  const write = (): void => writeFileSync(join(out, 'folds.json'), `${JSON.stringify(report(), null, 2)}\n`);
  let last: JobResult | undefined;
  for (let fold = 0; fold < k; fold++) {
    const sub = { ...plan, job: `${plan.job}-fold${fold}`, split: `kfold:${k}/${fold}`, out: join(out, `fold-${fold}`) };
    delete (sub as { folds?: number }).folds;
    log(`\n=== fold ${fold + 1}/${k} (--split kfold:${k} --fold ${fold}): job ${sub.job} in ${sub.out}`);
    const r = await launch(sub, root, log, opts);
    last = r;
    const best = (r as { bestEpoch?: number }).bestEpoch;
    folds.push({ fold, job: sub.job, out: r.out, metrics: r.metrics, seconds: r.seconds, ...(best !== undefined ? { bestEpoch: best } : {}) });
    write();
  }
  const final = report();
  log(`\nEvaluating ${Object.keys(final.summary).join(', ')} of ${plan.model} on ${k} folds (--split kfold:${k}, seed ${plan.seed}):\n`);
  log(formatFoldsTable(final));
  log(`\nfolds.json: ${join(out, 'folds.json')}`);
  return {
    job: plan.job,
    strategy: plan.strategy,
    model: plan.model,
    metrics: Object.fromEntries(Object.entries(final.summary).map(([name, s]) => [name, s.mean])),
    steps: last?.steps ?? 0,
    seconds: final.seconds,
    ...(last?.noiseFloorRmse !== undefined ? { noiseFloorRmse: last.noiseFloorRmse } : {}),
    out,
  };
}
