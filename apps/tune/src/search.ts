// What `npx nx run tune` searches: the flags, the grid (KEY=V1,V2,… per --grid), its settings
// (every combination, or --random N of them, seeded) and how each setting becomes launcher flags.
// Everything is checked before the first job starts.
import { parseArgs } from 'node:util';
import { didYouMean } from '@actorflow/bus';
import { resolveUserPath } from '@actorflow/data';
import { DATA_HYPER, listModels, modelEntry } from '@actorflow/models';

export class TuneFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TuneFlagError';
  }
}

/** Grid keys that are launcher flags (the optimizer and the training schedule), not model hyper-parameters. */
export const LAUNCHER_KEYS = ['lr', 'l2', 'optimizer', 'epochs', 'batch-size', 'seed', 'early-stop', 'validation'] as const;

export type Setting = Readonly<Record<string, string>>;

export interface TunePlan {
  readonly model: string;
  /** The grid: each key's values, in the order given. */
  readonly grid: readonly { readonly key: string; readonly values: readonly string[] }[];
  /** The settings to run, in order. */
  readonly settings: readonly Setting[];
  readonly parallel: number;
  /** The metric to sort by (undefined: the headline metric of the first result). */
  readonly metric?: string;
  /** Folder of the search: tune.json and one job folder per setting. */
  readonly out: string;
  readonly id: string;
  /** Flags given to every job as they are (dataset, split, strategy, trainers, --folds, …). */
  readonly jobArgs: readonly string[];
  readonly seed: number;
}

export const tuneUsage = `Usage: npx nx run tune -- --model NAME --grid KEY=V1,V2[,…] [--grid …] [options] [job flags]

Runs one launcher job per setting of the grid (every combination, or --random N of them), reads each
job's metrics.json, prints a results table sorted by the headline metric with the best setting, and
writes tune.json. KEY is a model hyper-parameter (e.g. dim, initStd) or one of the launcher's
${LAUNCHER_KEYS.map((k) => `--${k}`).join(', ')}.

  --model NAME        model to tune (default mf): ${listModels()
    .map((m) => m.name)
    .join(', ')}
  --grid KEY=VALUES   comma-separated values of one key (repeatable), e.g. --grid dim=16,64 --grid l2=0.0002,0.0005
  --random N          run N settings drawn at random (seeded by --seed) instead of the whole grid
  --parallel N        jobs at once (default 1: each job already runs several processes)
  --metric NAME       sort by this metric (default: the headline one, e.g. rmse; lower is better for
                      rmse, mae, mse, bce, loss; higher for the others)
  --folds K           score each setting by K-fold cross-validation: every job runs with
                      --split kfold:K --folds all and is ranked by the mean over its folds (± std)
  --out DIR           folder for tune.json and the jobs' folders (default out/tune-<time>)
  --help              this text

Every other flag goes to each job unchanged (--dataset, --split, --strategy, --trainers, --folds, …;
see npx nx run job -- --help). The job ids are <tune id>-<k>.
`;

const TUNE_OPTIONS = {
  model: { type: 'string' },
  grid: { type: 'string', multiple: true },
  random: { type: 'string' },
  parallel: { type: 'string' },
  metric: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean' },
  job: { type: 'string' },
  seed: { type: 'string' },
  folds: { type: 'string' },
} as const;

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new TuneFlagError(`--${name} must be a positive integer, got '${raw}'`);
  return n;
}

/** Splits argv into tune's own flags and the flags for every job (anything tune does not know). */
export function splitArgs(argv: readonly string[]): { own: string[]; job: string[] } {
  const own: string[] = [];
  const job: string[] = [];
  const known = new Set(Object.keys(TUNE_OPTIONS));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const m = /^--([a-z][-a-z0-9]*)(=.*)?$/.exec(a);
    const target = m !== null && known.has(m[1] ?? '') ? own : job;
    target.push(a);
    // A value follows unless this is --flag=value, a switch, or the next token is a flag.
    const next = argv[i + 1];
    const isSwitch = m !== null && (m[1] === 'help' || (target === job && (next === undefined || /^--[a-z]/.test(next))));
    if (m !== null && m[2] === undefined && !isSwitch && next !== undefined) {
      target.push(next);
      i++;
    }
  }
  return { own, job };
}

/** `dim=16,64` → { key: 'dim', values: ['16', '64'] }. */
export function parseGridFlag(spec: string): { key: string; values: string[] } {
  const eq = spec.indexOf('=');
  const key = eq > 0 ? spec.slice(0, eq).trim() : '';
  const values =
    eq > 0
      ? spec
          .slice(eq + 1)
          .split(',')
          .map((v) => v.trim())
      : [];
  if (key === '' || values.length === 0 || values.some((v) => v === '')) {
    throw new TuneFlagError(`--grid takes KEY=V1,V2,… (e.g. --grid dim=16,64), got '${spec}'`);
  }
  if (new Set(values).size !== values.length) throw new TuneFlagError(`--grid ${spec}: a value is listed twice`);
  return { key, values };
}

/**
 * Every grid key must be a hyper-parameter of the model (not one the data decides) or a launcher
 * key; numbers must be numbers where the model's default is one. Throws on the first bad key.
 */
export function checkGrid(model: string, grid: readonly { key: string; values: readonly string[] }[]): void {
  let defaults: Readonly<Record<string, unknown>>;
  try {
    defaults = modelEntry(model).defaults;
  } catch (err) {
    throw new TuneFlagError(`--model: ${(err as Error).message}`);
  }
  const own = Object.keys(defaults).filter((k) => !(DATA_HYPER as readonly string[]).includes(k));
  const seen = new Set<string>();
  for (const { key, values } of grid) {
    if (seen.has(key)) throw new TuneFlagError(`--grid ${key}: given twice; list every value in one --grid ${key}=…`);
    seen.add(key);
    if ((DATA_HYPER as readonly string[]).includes(key)) throw new TuneFlagError(`--grid ${key}: the data sets ${key}; it cannot be tuned`);
    const launcher = (LAUNCHER_KEYS as readonly string[]).includes(key);
    if (!launcher && !own.includes(key)) {
      throw new TuneFlagError(
        `--grid ${key}: model '${model}' has no hyper-parameter '${key}'${didYouMean(key, [...own, ...LAUNCHER_KEYS], { ignoreCase: true })}; it takes ${own.join(', ')}, or the launcher's ${LAUNCHER_KEYS.join(', ')}`,
      );
    }
    const numeric = launcher ? key !== 'optimizer' && key !== 'validation' : typeof defaults[key] === 'number';
    for (const v of values) {
      if (numeric && !Number.isFinite(Number(v))) throw new TuneFlagError(`--grid ${key}: '${v}' is not a number`);
    }
  }
}

/** Every combination, the first key varying slowest. */
export function expandGrid(grid: readonly { key: string; values: readonly string[] }[]): Setting[] {
  let out: Record<string, string>[] = [{}];
  for (const { key, values } of grid) out = out.flatMap((s) => values.map((v) => ({ ...s, [key]: v })));
  return out;
}

/** `n` distinct settings of the grid drawn with a seeded shuffle (all of them if n ≥ the grid's size). */
export function sampleSettings(all: readonly Setting[], n: number, seed: number): Setting[] {
  let s = seed >>> 0 || 1;
  const rand = (): number => {
    // xorshift32: deterministic for a given --seed
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  const idx = [...all.keys()];
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j] ?? 0, idx[i] ?? 0];
  }
  return idx.slice(0, Math.min(n, idx.length)).map((i) => all[i] ?? {});
}

/** The launcher flags of one setting: launcher keys as flags, the rest as --hyper KEY=VALUE. */
export function settingArgs(setting: Setting): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(setting)) {
    if ((LAUNCHER_KEYS as readonly string[]).includes(k)) out.push(`--${k}=${v}`);
    else out.push('--hyper', `${k}=${v}`);
  }
  return out;
}

export function parseTuneFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, now = new Date()): TunePlan | 'help' {
  const { own, job } = splitArgs(argv);
  let values;
  try {
    ({ values } = parseArgs({ args: own, options: TUNE_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new TuneFlagError(`${(err as Error).message.split('\n')[0] ?? ''} (run with --help for the options)`);
  }
  if (values.help === true) return 'help';
  if (values.job !== undefined) throw new TuneFlagError(`--job: tune names its jobs <tune id>-<k>; give --out DIR to name the search instead`);
  const model = values.model ?? 'mf';
  const grid = (values.grid ?? []).map(parseGridFlag);
  if (grid.length === 0) throw new TuneFlagError(`give at least one --grid KEY=V1,V2 (e.g. --grid dim=16,64)`);
  checkGrid(model, grid);
  const fixed = fixedKeys(job);
  for (const { key } of grid) if (fixed.has(key)) throw new TuneFlagError(`--grid ${key}: ${key} is also set for every job (${fixed.get(key) ?? ''}); drop one of them`);
  const seed = values.seed !== undefined ? positiveIntOrZero('seed', values.seed) : 42;
  const all = expandGrid(grid);
  const settings = values.random !== undefined ? sampleSettings(all, positiveInt('random', values.random, 1), seed) : all;
  const id = `tune-${now
    .toISOString()
    .replace(/[-:T.Z]/g, '')
    .slice(0, 14)}`;
  return {
    model,
    grid,
    settings,
    parallel: positiveInt('parallel', values.parallel, 1),
    ...(values.metric !== undefined ? { metric: values.metric } : {}),
    out: values.out !== undefined ? resolveUserPath(values.out, env) : `out/${id}`,
    id,
    jobArgs: ['--model', model, ...(values.seed !== undefined ? ['--seed', values.seed] : []), ...foldArgs(values.folds, job), ...job],
    seed,
  };
}

/** --folds K: every job cross-validates (`--split kfold:K --folds all`); `--folds all` goes to the jobs as it is (with their --split kfold:K). */
function foldArgs(folds: string | undefined, job: readonly string[]): string[] {
  if (folds === undefined) return [];
  if (folds === 'all') return ['--folds', 'all'];
  const k = Number(folds);
  if (!Number.isInteger(k) || k < 2) throw new TuneFlagError(`--folds must be an integer ≥ 2 (the K of a K-fold split), got '${folds}'`);
  const split = job.findIndex((a) => a === '--split' || a.startsWith('--split='));
  if (split >= 0) throw new TuneFlagError(`--folds ${k} sets every job's split to kfold:${k}; drop ${job[split] === '--split' ? `--split ${job[split + 1] ?? ''}` : job[split]}`);
  return ['--split', `kfold:${k}`, '--folds', 'all'];
}

function positiveIntOrZero(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new TuneFlagError(`--${name} must be a non-negative integer, got '${raw}'`);
  return n;
}

/**
 * The job flags the launcher does not know, each with " (did you mean …?)", given the launcher's
 * --help text (every `--flag` it names): checked before the first job starts.
 */
export function unknownJobFlags(jobArgs: readonly string[], launcherUsage: string): string[] {
  const known = [...new Set([...launcherUsage.matchAll(/--([a-z][-a-z0-9]*)/g)].map((m) => m[1] ?? ''))];
  const bad: string[] = [];
  for (const a of jobArgs) {
    const m = /^--([a-z][-a-z0-9]*)/.exec(a);
    if (m !== null && !known.includes(m[1] ?? '')) bad.push(`--${m[1] ?? ''}${didYouMean(m[1] ?? '', known, { prefix: '--', ignoreCase: true })}`);
  }
  return bad;
}

/** Keys the job flags already set for every job: --lr X, --hyper dim=8, --model-flag l2=… . */
function fixedKeys(job: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < job.length; i++) {
    const m = /^--([a-z][-a-z0-9]*)(?:=(.*))?$/.exec(job[i] ?? '');
    if (m === null) continue;
    const flag = m[1] ?? '';
    const value = m[2] ?? job[i + 1] ?? '';
    if (flag === 'hyper' || flag === 'model-flag') out.set(value.split('=')[0] ?? '', `--${flag} ${value}`);
    else if ((LAUNCHER_KEYS as readonly string[]).includes(flag)) out.set(flag, `--${flag} ${value}`);
  }
  return out;
}
