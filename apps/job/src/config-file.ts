// `--config job.json|job.yaml` (issue 15): the launcher's flags from a file. Each key is a flag
// without its `--` (`batch-size: 512`, or `batchSize`), so the file says nothing the command line
// cannot. The file's flags come first and the command line's after them, so a flag given on the
// command line wins; for the repeatable KEY=VALUE flags (--hyper, --model-flag) it wins per KEY.
// Paths in the file are relative to the file's folder, not to where the command runs.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { resolveUserPath } from '@actorflow/data';
import { parse as parseYaml } from 'yaml';

/** A bad --config file: what is wrong, in which file, and (for an unknown key) the nearest flag. */
export class ConfigFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigFileError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;
/** ' (did you mean x?)' for an unknown key, or '' (the launcher passes its own, so both read alike). */
export type Suggest = (word: string) => string;

/** Flags whose value is a KEY=VALUE pair, repeatable: a mapping in the file becomes one flag per key. */
const PAIR_FLAGS = new Set(['hyper', 'model-flag']);
/** Flags whose value is a path (or a spec holding one): resolved against the file's folder. */
const PATH_FLAGS = new Set(['dataset', 'out', 'resume', 'split', 'validation', 'plan', 'blueprint']);

/** `batchSize` → `batch-size`; kebab-case keys stay as they are. */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The --config path given in argv (`--config F` or `--config=F`) and argv without it. */
export function takeConfigFlag(argv: readonly string[]): { path: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--config' || a.startsWith('--config=')) {
      if (path !== undefined) throw new ConfigFileError(`--config is given twice ('${path}' and '${a === '--config' ? (argv[i + 1] ?? '') : a.slice(9)}'); give one file`);
      const value = a === '--config' ? argv[++i] : a.slice('--config='.length);
      if (value === undefined || value === '' || value.startsWith('--')) throw new ConfigFileError(`--config needs a file: --config job.json or --config job.yaml`);
      path = value;
    } else rest.push(a);
  }
  return { path, rest };
}

/** Reads a JSON or YAML file into its top-level mapping. */
export function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new ConfigFileError(`--config: no such file: ${file}`);
  if (!statSync(file).isFile()) throw new ConfigFileError(`--config: ${file} is not a file`);
  const ext = extname(file).toLowerCase();
  if (ext !== '.json' && ext !== '.yaml' && ext !== '.yml') throw new ConfigFileError(`--config ${file}: the file must end in .json, .yaml or .yml (it is read as that format)`);
  const text = readFileSync(file, 'utf8');
  let data: unknown;
  try {
    data = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const first = ((err as Error).message.split('\n')[0] ?? '').trim();
    throw new ConfigFileError(`--config ${file}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${first}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data))
    throw new ConfigFileError(`--config ${file}: the file must hold a mapping of flag names to values (e.g. "epochs: 5"), not ${Array.isArray(data) ? 'a list' : typeof data}`);
  return data as Record<string, unknown>;
}

function scalar(file: string, key: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return String(v);
  throw new ConfigFileError(`--config ${file}: '${key}' must be a string or a number, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}`);
}

/** A path value made absolute against `dir`: plain paths, `file:PATH` and `mnist:DIR`; `synthetic:…`, `mnist:bundled` and the other split specs stay. */
function resolvePathValue(flag: string, value: string, dir: string): string {
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(dir, p));
  if (value.startsWith('file:')) return `file:${at(value.slice('file:'.length))}`;
  if (flag === 'dataset') {
    if (value.startsWith('synthetic:') || value === 'mnist:bundled') return value;
    if (value.startsWith('mnist:')) return `mnist:${at(value.slice('mnist:'.length))}`;
    return at(value);
  }
  if (flag === 'split' || flag === 'validation') return value; // random:0.1, kfold:5, 0.05, …
  return at(value);
}

/** The KEY of a `KEY=VALUE` (or bare `KEY`) pair. */
function pairKey(pair: string): string {
  const eq = pair.indexOf('=');
  return eq < 0 ? pair : pair.slice(0, eq);
}

/** The file's mapping as argv tokens (`--flag=value`), each key checked against `known`. */
export function configArgs(data: Readonly<Record<string, unknown>>, file: string, known: readonly string[], suggest: Suggest = () => ''): string[] {
  const dir = dirname(file);
  const out: string[] = [];
  for (const [rawKey, value] of Object.entries(data)) {
    const flag = kebab(rawKey.replace(/^--/, ''));
    if (flag === 'config') throw new ConfigFileError(`--config ${file}: a config file cannot name another config file ('${rawKey}')`);
    if (!known.includes(flag))
      throw new ConfigFileError(`--config ${file}: unknown key '${rawKey}'${suggest(flag)}; the keys are the launcher's flags without '--' (run with --help for the list of options)`);
    if (value === null || value === undefined || value === false) continue; // unset / a switch left off
    if (value === true) {
      out.push(`--${flag}`);
      continue;
    }
    if (PAIR_FLAGS.has(flag) && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        out.push(v === true ? `--${flag}=${k}` : `--${flag}=${k}=${scalar(file, `${rawKey}.${k}`, v)}`);
      }
      continue;
    }
    const values = Array.isArray(value) ? value : [value];
    if (Array.isArray(value) && !PAIR_FLAGS.has(flag)) {
      // A list for a single-valued flag is written as the flag takes it: comma-separated (e.g. rating-range: [1, 5]).
      out.push(`--${flag}=${values.map((v, i) => scalar(file, `${rawKey}[${i}]`, v)).join(',')}`);
      continue;
    }
    for (const [i, v] of values.entries()) {
      const text = scalar(file, Array.isArray(value) ? `${rawKey}[${i}]` : rawKey, v);
      out.push(`--${flag}=${PATH_FLAGS.has(flag) ? resolvePathValue(flag, text, dir) : text}`);
    }
  }
  return out;
}

/**
 * argv with `--config FILE` replaced by the file's flags, placed before the command line's so
 * that the command line wins (for --hyper/--model-flag: a KEY given on the command line drops the
 * file's entry for that KEY). Without --config, argv unchanged. FILE is resolved like every user
 * path (against INIT_CWD under nx/npm).
 */
export function withConfigFile(argv: readonly string[], env: Env, known: readonly string[], suggest: Suggest = () => ''): string[] {
  const { path, rest } = takeConfigFlag(argv);
  if (path === undefined) return [...argv];
  const file = resolveUserPath(path, env);
  const fromFile = configArgs(readConfigFile(file), file, known, suggest);
  const givenPairs = new Map<string, Set<string>>();
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([a-z][-a-z0-9]*)(?:=(.*))?$/.exec(rest[i] ?? '');
    if (m === null || !PAIR_FLAGS.has(m[1] ?? '')) continue;
    const pair = m[2] ?? rest[i + 1] ?? '';
    const set = givenPairs.get(m[1] ?? '') ?? new Set<string>();
    set.add(pairKey(pair));
    givenPairs.set(m[1] ?? '', set);
  }
  const kept = fromFile.filter((a) => {
    const m = /^--([a-z][-a-z0-9]*)=(.*)$/.exec(a);
    return m === null || givenPairs.get(m[1] ?? '')?.has(pairKey(m[2] ?? '')) !== true;
  });
  return [...kept, ...rest];
}
