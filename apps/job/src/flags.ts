// Flags of the `job` launcher, parsed once into a typed plan. Unknown or malformed flags are
// errors that name the flag, so a typo never silently runs a different job.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { didYouMean } from '@actorflow/bus';
import { parseSplitSpec, resolveUserPath, SYNTHETIC_SIZES } from '@actorflow/data';
import { parseDataOptions as parseDataFlags, type DataOptions } from '@actorflow/feed';
import { OPTIMIZER_NAMES } from '@actorflow/protocol';
import { listModels, workloadFor } from '@actorflow/workloads';
import { ConfigFileError, withConfigFile } from './config-file.ts';
import { FOLD_FLAG_OPTIONS, FOLD_USAGE, foldFlags } from './folds.ts';
import { EARLY_STOP_FLAG_OPTIONS, EARLY_STOP_USAGE, earlyStopFlags, recommendedEarlyStop, type RecommendedEarlyStop } from './early-stop.ts';
import { DIVERGENCE_FLAG_OPTIONS, DIVERGENCE_USAGE, divergenceFlags, type DivergencePlan } from './rollback.ts';

export type StrategyName = 'ps' | 'mirrored';

export interface JobPlan {
  readonly job: string;
  readonly strategy: StrategyName;
  readonly model: string;
  readonly dataset: string;
  readonly split: string;
  readonly seed: number;
  readonly trainers: number;
  readonly dataShards: number;
  readonly psShards: number;
  readonly epochs: number;
  readonly allreduce: 'star' | 'ring';
  readonly batchSize: number;
  readonly evalEvery: number;
  readonly out: string;
  readonly backend: string | undefined;
  /** Flags passed through unchanged to the aggregator(s) (model and optimizer hyper-parameters). */
  readonly modelFlags: readonly string[];
  readonly natsUrl: string | undefined;
  readonly verbose: boolean;
  /** Data options passed to the data shards (and saved with the model so recommend loads the same data). */
  readonly data: DataOptions;
  /** Start the monitor's web page for this job on a free port (--monitor). */
  readonly monitor?: boolean;
  /** Fault tolerance (docs/RELIABILITY.md): restarts of each actor (mirrored: of the trainer group) before the job fails. */
  readonly maxRestarts: number;
  /** Mirrored: the group may shrink to this many ranks when a rank keeps failing (default: --trainers, no shrinking). */
  readonly minTrainers: number;
  /** An actor silent this long (no heartbeat) is declared dead. */
  readonly heartbeatTimeoutS: number;
  /** Checkpoint cadence: every `steps` global steps and/or every `seconds`. */
  readonly checkpointEvery: { readonly steps?: number; readonly seconds?: number };
  /** Complete checkpoints kept in <out>/checkpoints. */
  readonly keepCheckpoints: number;
  /** Set by --resume DIR: continue from DIR's newest complete checkpoint. */
  readonly resume?: string;
  /** --folds all with --split kfold:K: run every one of the K folds as a job (src/folds.ts). */
  readonly folds?: number;
  /** --early-stop PATIENCE (with --validation): stop after PATIENCE epochs without improvement (src/early-stop.ts). */
  readonly earlyStop?: number;
  /**
   * Set when the model's recommended early stopping applies (none of --epochs, --validation,
   * --early-stop given): then data.validation, earlyStop and epochs are its values.
   */
  readonly recommendedEarlyStop?: RecommendedEarlyStop;
  /** --on-divergence / --max-rollbacks (src/rollback.ts); absent in plans saved before them: stop. */
  readonly divergence?: DivergencePlan;
  /** --plan FILE or --blueprint FILE --use POLICY: actors run on node agents (src/remote.ts, docs/CLUSTER.md). */
  readonly cluster?: { readonly plan?: string; readonly blueprint?: string; readonly use?: string; readonly strategy?: string; readonly trainers?: string };
}

export class JobFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobFlagError';
  }
}

export const jobUsage = `Usage: npx nx run job -- [options]

Starts a whole local training job as separate processes: a nats-server on a free port (unless
--nats-url / NATS_URL is given), data shards, aggregator(s), trainers and an evaluator. Shows
progress, writes metrics.json, eval.jsonl, the trained model and every actor's log to --out,
and exits non-zero if any actor failed.

  --strategy ps|mirrored     training strategy (default ps)
  --model NAME               model (default mf): ${listModels()
    .map((m) => m.name)
    .join(', ')}
  --dataset SPEC             synthetic:tiny|small|medium|ml20m, a ratings file, mnist:bundled or mnist:DIR
                             (default synthetic:small; mnist:bundled for image models)
  --split SPEC               test split, e.g. random:0.1 (default), user:10, loo, strong:0.1, or file:PATH
                             (a test file in the training file's format, e.g. MovieLens u1.test with --dataset u1.base)
                             or kfold:K (a seeded K-fold split; with --fold I or --folds all)
${FOLD_USAGE}
${EARLY_STOP_USAGE}
  --seed N                   seed for data, shuffling and initialisation (default 42)
  --trainers N               trainer ranks (default 2)
  --data-shards K            data-shard processes (default 2)
  --ps-shards K              parameter-server aggregators in ps mode (default 2)
  --epochs N                 epochs (default: the model's recommended, else 10); a model that recommends early
                             stopping runs up to its maximum with it unless --epochs is given (see --early-stop)
  --batch-size B             batch size per trainer (default: the model's recommended, else 1024)
  --allreduce star|ring      mirrored all-reduce algorithm (default star)
  --eval-every N             evaluate every N steps (default 200; 0 = only at the end)
  --out DIR                  output directory (default out/<job>)
  --job ID                   job id (default job-<time>)
  --backend NAME             TF.js backend for trainers: tensorflow|wasm|cpu (default: best available)
  --model-flag FLAG=VALUE    passed to the aggregators as --FLAG VALUE (repeatable), e.g. --model-flag lr=0.02;
                             a bare FLAG passes a switch, e.g. --model-flag dense-updates
  --hyper KEY=VALUE          a model hyper-parameter (repeatable), e.g. --hyper dim=64
  --lr X, --optimizer NAME, --l2 X
                             the optimizer (adam|adagrad|sgd|rmsprop), its learning rate and L2 (default: the
                             model's recommended); the same as --model-flag lr=X and so on
  --rating-range LO,HI       every rating must lie in LO…HI (a rating outside is a file:line error)
  --min-user-ratings N       drop users with fewer than N ratings (and items below --min-item-ratings N), repeated
  --min-item-ratings N       until stable, before the split (not with --split file:)
  --implicit-threshold T     implicit feedback: ratings ≥ T become 1, the others are dropped, before the split
  --nats-url URL             use this NATS server instead of starting one
  --monitor                  also start the monitor's web page for this job on a free port (its URL is printed)
  --verbose                  echo every actor's output
  --config FILE              flags from a .json or .yaml file (keys are flag names, e.g. epochs: 5; hyper: {dim: 64});
                             flags on the command line win; paths in the file are relative to its folder
  --help                     this text

Fault tolerance (docs/RELIABILITY.md):
  --checkpoint-every N|Ns    checkpoint every N global steps, or every N seconds with an 's' (default 30s),
                             and at the end, into <out>/checkpoints/<step>/
  --keep-checkpoints K       complete checkpoints to keep (default 3)
  --max-restarts N           restarts of each crashed or stalled actor before the job fails (default 3);
                             mirrored: re-formations of the trainer group
  --min-trainers N           mirrored: when a rank keeps failing, go on with fewer ranks, down to N (default --trainers)
  --heartbeat-timeout S      an actor silent for S seconds is declared dead and handled as a crash (default 30)
${DIVERGENCE_USAGE}
  --resume DIR               continue the job in DIR (its plan.json) from its newest complete checkpoint
  --plan FILE                run on node agents as FILE (from \`npx nx run plan -- … --out FILE\`) places them (docs/CLUSTER.md)
  --blueprint FILE --use P   plan now over the blueprint's machines selected by P (all|gpus|cpus|energy), then run there

Security (docs/SECURITY.md): the job's own nats-server has one user per role with only the subjects
that role needs (fresh passwords per run, passed to each actor in its environment).
  --print-nats-config        print that configuration (users, passwords, permissions) for --job ID, to use
                             on a NATS server or cluster of your own, and exit; with --trainers N also one
                             user per trainer rank (<job>-trainer-<r>: it alone may push, contribute and
                             send ring chunks as rank r); with --nodes A,B,… also one user per node agent
                             (node.<name>: only its own cluster.node.<name>.* subjects; docs/SECURITY.md)
`;

/** A --job id: it becomes a NATS subject token. */
function checkJobId(job: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(job)) throw new JobFlagError(`--job must be letters, digits, '-' or '_' (it becomes a NATS subject token), got '${job}'`);
  return job;
}

/**
 * `--print-nats-config [--job ID] [--trainers N] [--nodes A,B,…]`: what to print, or undefined when
 * the flag is absent. `--nodes` adds one user per node agent (`node.<name>`, their `--name`s).
 */
export function parsePrintNatsConfig(argv: readonly string[]): { readonly job: string; readonly trainers?: number; readonly nodes?: readonly string[] } | undefined {
  if (!argv.includes('--print-nats-config')) return undefined;
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? (argv[at + 1] ?? '') : undefined;
  };
  const job = checkJobId(value('--job') ?? 'job');
  const rawNodes = value('--nodes');
  const nodes = rawNodes?.split(',').map((n) => n.trim());
  if (nodes !== undefined && (nodes.some((n) => !/^[-\w]+$/.test(n)) || new Set(nodes).size !== nodes.length))
    throw new JobFlagError(`--nodes for --print-nats-config takes the node agents' names (their --name), comma-separated, each letters, digits, '-' or '_', none twice; got '${rawNodes}'`);
  const withNodes = nodes !== undefined ? { nodes } : {};
  const raw = value('--trainers');
  if (raw === undefined) return { job, ...withNodes };
  const trainers = Number(raw);
  if (!/^\d+$/.test(raw) || trainers < 1 || trainers > 4096) throw new JobFlagError(`--trainers for --print-nats-config must be a whole number of trainer ranks, 1…4096, got '${raw}'`);
  return { job, trainers, ...withNodes };
}

function positiveInt(name: string, raw: string | undefined, fallback: number, allowZero = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) {
    throw new JobFlagError(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got '${raw}'`);
  }
  return n;
}

export function parseJobFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): JobPlan | 'help' {
  let parsed;
  try {
    // --config FILE (config-file.ts): the file's flags before the command line's, so the command line wins.
    const args = withConfigFile(argv, env, KNOWN_FLAGS, (w) => didYouMean(w, KNOWN_FLAGS));
    parsed = parseArgs({
      args: joinDashValues(args),
      strict: true,
      allowPositionals: false,
      options: {
        strategy: { type: 'string' },
        model: { type: 'string' },
        dataset: { type: 'string' },
        split: { type: 'string' },
        ...FOLD_FLAG_OPTIONS,
        ...EARLY_STOP_FLAG_OPTIONS,
        seed: { type: 'string' },
        trainers: { type: 'string' },
        'data-shards': { type: 'string' },
        'ps-shards': { type: 'string' },
        epochs: { type: 'string' },
        'batch-size': { type: 'string' },
        'eval-every': { type: 'string' },
        allreduce: { type: 'string' },
        out: { type: 'string' },
        job: { type: 'string' },
        backend: { type: 'string' },
        'model-flag': { type: 'string', multiple: true },
        hyper: { type: 'string', multiple: true },
        'nats-url': { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean' },
        'rating-range': { type: 'string' },
        'min-user-ratings': { type: 'string' },
        'min-item-ratings': { type: 'string' },
        'implicit-threshold': { type: 'string' },
        'checkpoint-every': { type: 'string' },
        'keep-checkpoints': { type: 'string' },
        'max-restarts': { type: 'string' },
        'min-trainers': { type: 'string' },
        'heartbeat-timeout': { type: 'string' },
        resume: { type: 'string' },
        plan: { type: 'string' },
        blueprint: { type: 'string' },
        use: { type: 'string' },
        ...DIVERGENCE_FLAG_OPTIONS,
        ...FIRST_CLASS_FLAGS,
      },
    });
  } catch (err) {
    throw new JobFlagError(err instanceof ConfigFileError ? err.message : flagErrorLine(err as Error));
  }
  const v = parsed.values;
  if (v.help === true) return 'help';
  if (v.resume !== undefined) return resumePlan(v, env);
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new JobFlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const allreduce = v.allreduce ?? 'star';
  if (allreduce !== 'star' && allreduce !== 'ring') throw new JobFlagError(`--allreduce must be star or ring, got '${allreduce}'`);
  const job =
    v.job ??
    `job-${new Date()
      .toISOString()
      .replace(/[-:T.Z]/g, '')
      .slice(0, 14)}`;
  checkJobId(job);
  const modelFlags: string[] = [];
  for (const kv of v['model-flag'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq === 0 || kv === '') throw new JobFlagError(`--model-flag takes FLAG=VALUE or a bare FLAG, got '${kv}'`);
    if (eq < 0) modelFlags.push(`--${kv}`);
    else modelFlags.push(`--${kv.slice(0, eq)}`, kv.slice(eq + 1));
  }
  for (const kv of v.hyper ?? []) modelFlags.push('--hyper', kv);
  modelFlags.push(...firstClassModelFlags(v));
  const modelName = v.model ?? 'mf';
  let entry: { readonly input?: string; readonly recommended?: { readonly batchSize?: number; readonly epochs?: number; readonly earlyStop?: RecommendedEarlyStop } };
  try {
    // What the launcher needs to know of the model before any actor runs (libs/workloads).
    entry = workloadFor(modelName).launchInfo(modelName);
  } catch (err) {
    throw new JobFlagError((err as Error).message);
  }
  const images = entry.input === 'images';
  // None of --epochs, --validation, --early-stop given: the model's recommended early stopping, as if
  // given as those flags (so the same checks apply); any of them given: exactly what they say.
  const recommended = recommendedEarlyStop(v, entry.recommended?.earlyStop);
  const given = recommended !== undefined ? { ...v, validation: `${recommended.validation}`, 'early-stop': `${recommended.patience}`, epochs: `${recommended.maxEpochs}` } : v;
  const dataset = checkDataset(v.dataset ?? (images ? 'mnist:bundled' : 'synthetic:small'), env);
  const { split, folds } = foldFlags(v, checkSplit(v.split ?? 'random:0.1', dataset, images, env), (m) => new JobFlagError(m));
  let data: DataOptions;
  try {
    data = parseDataFlags(given);
  } catch (err) {
    throw new JobFlagError((err as Error).message);
  }
  if (split.startsWith('file:') && (data.minUserRatings !== undefined || data.minItemRatings !== undefined)) {
    throw new JobFlagError(`--min-user-ratings / --min-item-ratings do not apply to --split file: (they would drop ids the test file uses); filter the files beforehand`);
  }
  if (images && Object.keys(data).length > 0) throw new JobFlagError(`--rating-range, --min-*-ratings and --implicit-threshold are for rating datasets, not ${dataset}`);
  const trainers = positiveInt('trainers', v.trainers, 2);
  const minTrainers = positiveInt('min-trainers', v['min-trainers'], trainers);
  if (minTrainers > trainers) throw new JobFlagError(`--min-trainers ${minTrainers} is above --trainers ${trainers}`);
  if (v['min-trainers'] !== undefined && strategy !== 'mirrored') throw new JobFlagError(`--min-trainers is for --strategy mirrored (ps trainers come and go freely)`);
  return {
    job,
    strategy,
    model: modelName,
    dataset,
    split,
    seed: positiveInt('seed', v.seed, 42, true),
    trainers,
    dataShards: positiveInt('data-shards', v['data-shards'], 2),
    psShards: positiveInt('ps-shards', v['ps-shards'], 2),
    epochs: positiveInt('epochs', given.epochs, entry.recommended?.epochs ?? 10),
    batchSize: positiveInt('batch-size', v['batch-size'], entry.recommended?.batchSize ?? 1024),
    allreduce,
    evalEvery: positiveInt('eval-every', v['eval-every'], 200, true),
    // The default is under the repository's out/ (launchJob resolves it against the root); a given
    // --out is the user's, relative to the folder they ran the command in.
    out: v.out !== undefined ? resolveUserPath(v.out, env) : `out/${job}`,
    backend: v.backend,
    modelFlags,
    natsUrl: v['nats-url'] ?? (env.NATS_URL !== undefined && env.NATS_URL !== '' ? env.NATS_URL : undefined),
    verbose: v.verbose === true,
    data,
    ...(v.monitor === true ? { monitor: true } : {}),
    ...(folds !== undefined ? { folds } : {}),
    ...earlyStopFlags(given, data.validation, (m) => new JobFlagError(m)),
    ...(recommended !== undefined ? { recommendedEarlyStop: recommended } : {}),
    ...faultFlags(v),
    minTrainers,
    ...divergenceFlags(v, (m) => new JobFlagError(m)),
    ...clusterFlags(v, env),
  };
}

/** --plan FILE | --blueprint FILE [--use POLICY]: the machines (src/remote.ts). */
function clusterFlags(v: { plan?: string; blueprint?: string; use?: string; strategy?: string; trainers?: string }, env: Readonly<Record<string, string | undefined>>): Pick<JobPlan, 'cluster'> {
  if (v.plan !== undefined && v.blueprint !== undefined) throw new JobFlagError(`--plan and --blueprint exclude each other: a plan already names its machines`);
  if (v.use !== undefined && v.blueprint === undefined) throw new JobFlagError(`--use selects machines of a --blueprint FILE; pass one (or a --plan FILE)`);
  if (v.plan === undefined && v.blueprint === undefined) return {};
  return {
    cluster: {
      ...(v.plan !== undefined ? { plan: resolveUserPath(v.plan, env) } : {}),
      ...(v.blueprint !== undefined ? { blueprint: resolveUserPath(v.blueprint, env), use: v.use ?? 'all' } : {}),
      ...(v.strategy !== undefined ? { strategy: v.strategy } : {}),
      ...(v.trainers !== undefined ? { trainers: v.trainers } : {}),
    },
  };
}

type FaultValues = { 'checkpoint-every'?: string; 'keep-checkpoints'?: string; 'max-restarts'?: string; 'heartbeat-timeout'?: string };

function faultFlags(v: FaultValues): Pick<JobPlan, 'maxRestarts' | 'heartbeatTimeoutS' | 'checkpointEvery' | 'keepCheckpoints'> {
  return {
    maxRestarts: positiveInt('max-restarts', v['max-restarts'], 3, true),
    heartbeatTimeoutS: positiveInt('heartbeat-timeout', v['heartbeat-timeout'], 30),
    checkpointEvery: parseCheckpointEvery(v['checkpoint-every'] ?? '30s'),
    keepCheckpoints: positiveInt('keep-checkpoints', v['keep-checkpoints'], 3),
  };
}

/** `200` (steps), `30s` (seconds), or both: `200,30s`. */
export function parseCheckpointEvery(spec: string): { steps?: number; seconds?: number } {
  const out: { steps?: number; seconds?: number } = {};
  for (const part of spec.split(',').map((p) => p.trim())) {
    const m = /^(\d+(?:\.\d+)?)(s?)$/.exec(part);
    const n = m === null ? Number.NaN : Number(m[1]);
    if (m === null || !(n > 0) || (m[2] === '' && !Number.isInteger(n))) {
      throw new JobFlagError(`--checkpoint-every takes N (global steps), Ns (seconds) or both as 'N,Ms', got '${spec}'`);
    }
    if (m[2] === 's') out.seconds = n;
    else out.steps = n;
  }
  return out;
}

/** Flags that may accompany --resume (how to run, not what to train). */
const RESUME_FLAGS = new Set(['resume', 'verbose', 'monitor', 'nats-url', 'max-restarts', 'heartbeat-timeout', 'checkpoint-every', 'keep-checkpoints']);

/** --resume DIR: the plan saved in DIR/plan.json, with the run-time flags given now. */
function resumePlan(v: Record<string, unknown>, env: Readonly<Record<string, string | undefined>>): JobPlan {
  const dir = resolveUserPath(String(v.resume), env);
  const extra = Object.keys(v).filter((k) => v[k] !== undefined && !RESUME_FLAGS.has(k));
  if (extra.length > 0)
    throw new JobFlagError(
      `--resume continues the job saved in ${dir} as it was planned; drop ${extra.map((k) => `--${k}`).join(', ')} (only ${[...RESUME_FLAGS].map((k) => `--${k}`).join(', ')} may change)`,
    );
  const file = `${dir}/plan.json`;
  if (!existsSync(file)) throw new JobFlagError(`--resume ${dir}: no plan.json there (is it the --out folder of a job started by this launcher?)`);
  let saved: JobPlan;
  try {
    saved = JSON.parse(readFileSync(file, 'utf8')) as JobPlan;
  } catch (err) {
    throw new JobFlagError(`--resume ${dir}: plan.json is not readable JSON (${(err as Error).message})`);
  }
  if (typeof saved.job !== 'string' || (saved.strategy !== 'ps' && saved.strategy !== 'mirrored') || typeof saved.model !== 'string') {
    throw new JobFlagError(`--resume ${dir}: plan.json does not describe a job (job, strategy, model missing)`);
  }
  const fv = v as FaultValues;
  return {
    ...saved,
    ...Object.fromEntries(Object.entries(faultFlags(fv)).filter(([k]) => fv[FAULT_FLAG_OF[k] ?? ''] !== undefined)),
    out: dir,
    resume: dir,
    verbose: v.verbose === true,
    ...(v.monitor === true ? { monitor: true } : {}),
    natsUrl: typeof v['nats-url'] === 'string' ? v['nats-url'] : env.NATS_URL !== undefined && env.NATS_URL !== '' ? env.NATS_URL : undefined,
  };
}

const FAULT_FLAG_OF: Readonly<Record<string, keyof FaultValues>> = {
  maxRestarts: 'max-restarts',
  heartbeatTimeoutS: 'heartbeat-timeout',
  checkpointEvery: 'checkpoint-every',
  keepCheckpoints: 'keep-checkpoints',
};

function checkFile(what: string, given: string, env: Readonly<Record<string, string | undefined>>): string {
  const path = resolveUserPath(given, env);
  if (!existsSync(path)) throw new JobFlagError(`${what}: no such file: ${path}${path !== given ? ` ('${given}' resolved against ${env.INIT_CWD ?? process.cwd()})` : ''}`);
  if (!statSync(path).isFile()) throw new JobFlagError(`${what}: ${path} is not a file`);
  return path;
}

/** The dataset spec with a file path made absolute; a bad spec or a missing file is an error before anything starts. */
function checkDataset(spec: string, env: Readonly<Record<string, string | undefined>>): string {
  if (spec.startsWith('synthetic:')) {
    const size = spec.slice('synthetic:'.length);
    if (!(size in SYNTHETIC_SIZES)) throw new JobFlagError(`--dataset: unknown synthetic size '${size}'; use synthetic:${Object.keys(SYNTHETIC_SIZES).join('|synthetic:')} or a ratings file`);
    return spec;
  }
  if (spec.startsWith('mnist:')) {
    const where = spec.slice('mnist:'.length);
    if (where === 'bundled') return spec;
    const dir = resolveUserPath(where, env);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new JobFlagError(`--dataset ${spec}: no such folder: ${dir} (it should hold the IDX files train-images-idx3-ubyte[.gz], …)`);
    return `mnist:${dir}`;
  }
  return checkFile('--dataset', spec, env);
}

/** The split spec checked without loading any data; `file:PATH` gets an absolute, existing path. */
function checkSplit(spec: string, dataset: string, images: boolean, env: Readonly<Record<string, string | undefined>>): string {
  let parsed;
  try {
    parsed = parseSplitSpec(spec);
  } catch (err) {
    throw new JobFlagError(`--split: ${(err as Error).message}`);
  }
  if (parsed.kind !== 'file') return spec;
  if (images || dataset.startsWith('synthetic:') || dataset.startsWith('mnist:')) {
    throw new JobFlagError(`--split ${spec}: a test file needs --dataset to be the training file (in the same format), not ${dataset}`);
  }
  return `file:${checkFile('--split file:', parsed.path, env)}`;
}

// ---------------------------------------------------------------------------------------------
// Flag errors and first-class optimizer flags (issue 15): kept apart from the spec checks above.

/** --lr, --optimizer, --l2 (aliases of --model-flag lr=… etc.) and --monitor. */
const FIRST_CLASS_FLAGS = {
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  l2: { type: 'string' },
  monitor: { type: 'boolean' },
} as const;

/** Every flag the launcher knows (for "did you mean"). */
const KNOWN_FLAGS = [
  'strategy',
  'model',
  'dataset',
  'split',
  ...Object.keys(FOLD_FLAG_OPTIONS),
  ...Object.keys(EARLY_STOP_FLAG_OPTIONS),
  'seed',
  'trainers',
  'data-shards',
  'ps-shards',
  'epochs',
  'batch-size',
  'eval-every',
  'allreduce',
  'out',
  'job',
  'backend',
  'model-flag',
  'hyper',
  'nats-url',
  'verbose',
  'help',
  'rating-range',
  'min-user-ratings',
  'min-item-ratings',
  'implicit-threshold',
  'checkpoint-every',
  'keep-checkpoints',
  'max-restarts',
  'min-trainers',
  'heartbeat-timeout',
  'resume',
  'plan',
  'blueprint',
  'use',
  'config',
  ...Object.keys(DIVERGENCE_FLAG_OPTIONS),
  ...Object.keys(FIRST_CLASS_FLAGS),
];

const OPTIMIZERS: readonly string[] = OPTIMIZER_NAMES; // the names the job config accepts (libs/protocol)

function firstClassModelFlags(v: { lr?: string; optimizer?: string; l2?: string }): string[] {
  const out: string[] = [];
  for (const name of ['lr', 'l2'] as const) {
    const raw = v[name];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new JobFlagError(`--${name} must be a non-negative number, got '${raw}'`);
    out.push(`--${name}`, raw);
  }
  if (v.optimizer !== undefined) {
    if (!OPTIMIZERS.includes(v.optimizer)) throw new JobFlagError(`--optimizer must be ${OPTIMIZERS.join(', ')}, got '${v.optimizer}'${didYouMean(v.optimizer, OPTIMIZERS)}`);
    out.push('--optimizer', v.optimizer);
  }
  return out;
}

/** `--epochs -1` would be a parser puzzle ("ambiguous"); as `--epochs=-1` the value check names it. */
function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const next = argv[i + 1];
    if (/^--[a-z][-a-z0-9]*$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** One line for a parser error: the unknown flag with "did you mean", or the parser's message. */
function flagErrorLine(err: Error): string {
  const unknown = /Unknown option '(-{1,2})([^'=]+)/.exec(err.message);
  if (unknown !== null) {
    const name = unknown[2] ?? '';
    return `unknown flag ${unknown[1] ?? ''}${name}${didYouMean(name, KNOWN_FLAGS, { prefix: '--' })}; run with --help for the list of options`;
  }
  const firstLine = err.message.split('\n')[0] ?? err.message;
  return `${firstLine.trim()} (run with --help for the list of options)`;
}
