// Flags of the `job` launcher, parsed once into a typed plan. Unknown or malformed flags are
// errors that name the flag, so a typo never silently runs a different job.
import { parseArgs } from 'node:util';
import { KNN_LAUNCH, KNN_MODEL } from '@actorflow/knn';
import { listModels, modelEntry } from '@actorflow/models';

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
  --model NAME               model (default mf): ${[...listModels().map((m) => m.name), KNN_MODEL].join(', ')}
  --dataset SPEC             synthetic:tiny|small|medium|ml20m, a ratings file, mnist:bundled or mnist:DIR
                             (default synthetic:small; mnist:bundled for image models)
  --split SPEC               test split, e.g. random:0.1 (default)
  --seed N                   seed for data, shuffling and initialisation (default 42)
  --trainers N               trainer ranks (default 2)
  --data-shards K            data-shard processes (default 2)
  --ps-shards K              parameter-server aggregators in ps mode (default 2)
  --epochs N                 epochs (default: the model's recommended, else 10)
  --batch-size B             batch size per trainer (default: the model's recommended, else 1024)
  --allreduce star|ring      mirrored all-reduce algorithm (default star)
  --eval-every N             evaluate every N steps (default 200; 0 = only at the end)
  --out DIR                  output directory (default out/<job>)
  --job ID                   job id (default job-<time>)
  --backend NAME             TF.js backend for trainers: tensorflow|wasm|cpu (default: best available)
  --model-flag FLAG=VALUE    passed to the aggregators as --FLAG VALUE (repeatable), e.g. --model-flag lr=0.02;
                             a bare FLAG passes a switch, e.g. --model-flag dense-updates
  --hyper KEY=VALUE          a model hyper-parameter (repeatable), e.g. --hyper dim=64
  --nats-url URL             use this NATS server instead of starting one
  --verbose                  echo every actor's output
  --help                     this text
`;

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
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        strategy: { type: 'string' },
        model: { type: 'string' },
        dataset: { type: 'string' },
        split: { type: 'string' },
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
      },
    });
  } catch (err) {
    throw new JobFlagError(`${(err as Error).message}\nRun with --help for the list of options.`);
  }
  const v = parsed.values;
  if (v.help === true) return 'help';
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new JobFlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const allreduce = v.allreduce ?? 'star';
  if (allreduce !== 'star' && allreduce !== 'ring') throw new JobFlagError(`--allreduce must be star or ring, got '${allreduce}'`);
  const job = v.job ?? `job-${new Date().toISOString().replace(/[-:T.Z]/g, '').slice(0, 14)}`;
  if (!/^[A-Za-z0-9_-]+$/.test(job)) {
    throw new JobFlagError(`--job must be letters, digits, '-' or '_' (it becomes a NATS subject token), got '${job}'`);
  }
  const modelFlags: string[] = [];
  for (const kv of v['model-flag'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq === 0 || kv === '') throw new JobFlagError(`--model-flag takes FLAG=VALUE or a bare FLAG, got '${kv}'`);
    if (eq < 0) modelFlags.push(`--${kv}`);
    else modelFlags.push(`--${kv.slice(0, eq)}`, kv.slice(eq + 1));
  }
  for (const kv of v.hyper ?? []) modelFlags.push('--hyper', kv);
  const modelName = v.model ?? 'mf';
  let entry: { readonly input?: string; readonly recommended?: { readonly batchSize?: number; readonly epochs?: number } };
  try {
    // kNN is not a registered (trainable) model; libs/knn says what the launcher needs to know.
    entry = modelName === KNN_MODEL ? KNN_LAUNCH : modelEntry(modelName);
  } catch (err) {
    throw new JobFlagError((err as Error).message);
  }
  const images = entry.input === 'images';
  return {
    job,
    strategy,
    model: modelName,
    dataset: v.dataset ?? (images ? 'mnist:bundled' : 'synthetic:small'),
    split: v.split ?? 'random:0.1',
    seed: positiveInt('seed', v.seed, 42, true),
    trainers: positiveInt('trainers', v.trainers, 2),
    dataShards: positiveInt('data-shards', v['data-shards'], 2),
    psShards: positiveInt('ps-shards', v['ps-shards'], 2),
    epochs: positiveInt('epochs', v.epochs, entry.recommended?.epochs ?? 10),
    batchSize: positiveInt('batch-size', v['batch-size'], entry.recommended?.batchSize ?? 1024),
    allreduce,
    evalEvery: positiveInt('eval-every', v['eval-every'], 200, true),
    out: v.out ?? `out/${job}`,
    backend: v.backend,
    modelFlags,
    natsUrl: v['nats-url'] ?? (env.NATS_URL !== undefined && env.NATS_URL !== '' ? env.NATS_URL : undefined),
    verbose: v.verbose === true,
  };
}
