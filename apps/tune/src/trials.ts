// Runs the search's jobs: each setting as one launcher job (apps/job/main.ts in its own process,
// exactly what `npx nx run job` runs), at most --parallel at a time, each job's output in
// <out>/logs/<job>.log and its result read back from <job out>/metrics.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { userCwd } from '@actorflow/data';
import { settingArgs, type Setting, type TunePlan } from './search.ts';

export interface TrialResult {
  /** 1-based, in the order of the settings. */
  readonly index: number;
  readonly job: string;
  readonly setting: Setting;
  /** The job's --out folder (metrics.json, model, logs). */
  readonly out: string;
  readonly status: 'ok' | 'failed';
  readonly metrics?: Readonly<Record<string, number>>;
  /** Standard deviations per metric, when the job reports them (cross-validation over folds). */
  readonly std?: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly exitCode: number | null;
  /** Why a failed job failed: its last error line. */
  readonly error?: string;
}

/** A job refused its flags (exit 2): every job would, so the search stops. */
export class TuneJobUsageError extends Error {
  constructor(
    readonly job: string,
    message: string,
  ) {
    super(message);
    this.name = 'TuneJobUsageError';
  }
}

export interface RunOptions {
  /** The repository root (the jobs run from there, as `nx run job` does). */
  readonly root: string;
  /** apps/job/main.ts. */
  readonly jobMain: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal;
}

function numbers(v: unknown): Record<string, number> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'number' && Number.isFinite(x)) out[k] = x;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The metrics (and their std, if any) of a finished job: its metrics.json, or for a job that ran
 * every fold (--folds all) the mean and std over the folds from its folds.json.
 */
export function readJobMetrics(out: string): { metrics: Record<string, number>; std?: Record<string, number> } {
  const foldsFile = resolve(out, 'folds.json');
  if (existsSync(foldsFile)) {
    const summary = (JSON.parse(readFileSync(foldsFile, 'utf8')) as { summary?: Record<string, { mean?: unknown; std?: unknown }> }).summary ?? {};
    const metrics = numbers(Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, v.mean])));
    const std = numbers(Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, v.std])));
    if (metrics === undefined) throw new Error(`${foldsFile} has no metric summary`);
    return { metrics, ...(std !== undefined ? { std } : {}) };
  }
  const file = resolve(out, 'metrics.json');
  if (!existsSync(file)) throw new Error(`${file} is missing (the job exited 0 without writing it)`);
  const data = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const metrics = numbers(data.metrics);
  if (metrics === undefined) throw new Error(`${file} has no numeric metrics`);
  const std = numbers(data.std) ?? numbers(data.metricsStd);
  return { metrics, ...(std !== undefined ? { std } : {}) };
}

/** Runs every setting of the plan; resolves with one result per setting, in the settings' order. */
export async function runTrials(plan: TunePlan, o: RunOptions): Promise<TrialResult[]> {
  const tuneOut = resolve(o.root, plan.out);
  const logs = resolve(tuneOut, 'logs');
  mkdirSync(logs, { recursive: true });
  const results: (TrialResult | undefined)[] = plan.settings.map(() => undefined);
  const running = new Set<ChildProcess>();
  let usage: TuneJobUsageError | undefined;
  let next = 0;
  const stopAll = (): void => {
    for (const c of running) c.kill('SIGTERM');
  };
  o.signal?.addEventListener('abort', stopAll, { once: true });

  const runOne = (k: number): Promise<void> => {
    const setting = plan.settings[k] ?? {};
    const job = `${plan.id}-${k + 1}`;
    const out = resolve(tuneOut, job);
    const args = [...plan.jobArgs, ...settingArgs(setting), '--job', job, '--out', out];
    const started = Date.now();
    const shown = Object.entries(setting)
      .map(([key, v]) => `${key}=${v}`)
      .join(' ');
    o.log(`[${k + 1}/${plan.settings.length}] ${job}: ${shown}`);
    return new Promise((done) => {
      const logFile = createWriteStream(resolve(logs, `${job}.log`));
      logFile.write(`$ npx nx run job -- ${args.join(' ')}\n`);
      // The user's folder stays the one relative paths mean (INIT_CWD), as under nx.
      const child = spawn(process.execPath, ['--import', 'tsx', o.jobMain, ...args], {
        cwd: o.root,
        env: { ...o.env, INIT_CWD: userCwd(o.env) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      running.add(child);
      let lastErr = '';
      child.stdout.pipe(logFile, { end: false });
      child.stderr.on('data', (d: Buffer) => {
        logFile.write(d);
        const lines = d.toString('utf8').trim().split('\n');
        lastErr = lines[lines.length - 1] ?? lastErr;
      });
      child.on('close', (code) => {
        running.delete(child);
        logFile.end();
        const seconds = (Date.now() - started) / 1000;
        if (code === 2 && usage === undefined) {
          usage = new TuneJobUsageError(job, lastErr.replace(/^job: /, ''));
          stopAll();
        }
        let result: TrialResult;
        if (code === 0) {
          try {
            result = { index: k + 1, job, setting, out, status: 'ok', ...readJobMetrics(out), seconds, exitCode: code };
          } catch (err) {
            result = { index: k + 1, job, setting, out, status: 'failed', seconds, exitCode: code, error: (err as Error).message };
          }
        } else {
          result = { index: k + 1, job, setting, out, status: 'failed', seconds, exitCode: code, error: lastErr !== '' ? lastErr : `exit code ${String(code)}` };
        }
        results[k] = result;
        o.log(`[${k + 1}/${plan.settings.length}] ${job}: ${result.status === 'ok' ? summary(result.metrics ?? {}) : `failed (${result.error ?? ''})`} in ${seconds.toFixed(1)} s`);
        done();
      });
    });
  };

  const worker = async (): Promise<void> => {
    while (next < plan.settings.length && usage === undefined && o.signal?.aborted !== true) await runOne(next++);
  };
  await Promise.all(Array.from({ length: Math.min(plan.parallel, plan.settings.length) }, worker));
  o.signal?.removeEventListener('abort', stopAll);
  if (usage !== undefined) throw usage;
  return results.filter((r): r is TrialResult => r !== undefined);
}

function summary(metrics: Readonly<Record<string, number>>): string {
  return Object.entries(metrics)
    .slice(0, 3)
    .map(([k, v]) => `${k} ${v.toFixed(4)}`)
    .join(', ');
}
