// The workload seam, in the shape of tfjs's kernel registry: a model or algorithm registers what
// each role does for it — the aggregator, the trainer, the evaluator, and what the launcher and
// `recommend` need (has it parameters to checkpoint, how many steps does it plan, how is the trained
// model saved and opened). The apps look the model's name up here and never branch on it.
import type { NatsConnection } from '@actorflow/bus';
import type { Engine } from '@actorflow/engine';
import type { InteractionsBatch } from '@actorflow/data';
import type { JobDataset } from '@actorflow/feed';
import type { RecommendedEarlyStop } from '@actorflow/models';
import type { JobConfig } from '@actorflow/protocol';

/** Flags as node:util parseArgs returns them (strings, booleans, repeated strings). */
export type FlagValues = Readonly<Record<string, string | boolean | readonly string[] | undefined>>;

/** A workload name that is registered nowhere: says which names exist. */
export class UnknownWorkloadError extends Error {
  constructor(
    readonly model: string,
    readonly known: readonly string[],
  ) {
    super(`unknown model '${model}'; the models are ${known.join(', ')} (--list-models shows their hyper-parameters)`);
    this.name = 'UnknownWorkloadError';
  }
}

/** One model a workload serves, for --list-models and the launcher's help. */
export interface ModelListing {
  readonly name: string;
  readonly description: string;
  readonly hyper: Readonly<Record<string, number | string | boolean>>;
}

/** What the launcher must know of a model before any actor runs. */
export interface LaunchInfo {
  readonly input?: string;
  /** earlyStop: what a job runs with when given none of --epochs, --validation, --early-stop (libs/models' RecommendedEarlyStop). */
  readonly recommended?: {
    readonly batchSize?: number;
    readonly epochs?: number;
    readonly earlyStop?: RecommendedEarlyStop;
  };
}

/** A running aggregator: the configuration it serves, its live counters, and its stop. */
export interface ServedAggregator {
  readonly config: JobConfig;
  /** This aggregator owns the configuration and the job's end (shard 0). */
  readonly configOwner: boolean;
  stats(): Record<string, number>;
  stop(): void;
}

/** An aggregator whose flags are checked (before anything connects). */
export interface AggregatorRole {
  readonly job: string;
  /** The NATS connection name (aggregator-0, aggregator-knn). */
  readonly name: string;
  /** Its rank in $SRV.INFO (0/2, knn). */
  readonly rank: string;
  readonly log: (line: string) => void;
  serve(nc: NatsConnection): Promise<ServedAggregator>;
}

export interface TrainerOptions {
  readonly nc: NatsConnection;
  readonly config: JobConfig;
  readonly job: string;
  readonly strategy: 'ps' | 'mirrored';
  readonly rank: number;
  /** --ranks: several ranks in this process (mirrored, kNN). */
  readonly ranks: readonly number[];
  readonly worldSize: number;
  /** The trainer's parsed flags (backend, loss-every, snapshot-every, …). */
  readonly flags: FlagValues;
  readonly log: (line: string) => void;
  /** Live counters for $SRV.STATS. */
  readonly onProgress?: (steps: number, examples: number) => void;
}

export interface EvaluatorOptions {
  readonly nc: NatsConnection;
  readonly config: JobConfig;
  readonly job: string;
  readonly every: number;
  /** Appends every result to DIR/eval.jsonl and DIR/eval.csv. */
  readonly out?: string;
  readonly backend?: string;
  readonly log: (line: string) => void;
}

export interface ServedEvaluator {
  stop(): void;
}

/** What the saved model is written with besides the configuration (the dataset, the rating range). */
export interface SaveExtra {
  /** The job ran mirrored (its parameters are the replica rank 0 sent), whatever the aggregator's --strategy said. */
  readonly mirrored?: boolean;
  readonly dataset: Readonly<Record<string, unknown>>;
  readonly ratingRange?: readonly [number, number];
}

/** A trained model opened for `recommend`: scores in, neighbours out. */
export interface OpenedModel {
  readonly name: string;
  /** Scores of every item for a user (internal index) with these training items; higher is better. */
  scoreItems(engine: Engine, user: number, history: InteractionsBatch): Float32Array;
  /** Scores are predicted ratings, shown clipped to the training range. */
  readonly clipsScores: boolean;
  /** The `n` items nearest to `item` (internal indices), best first. */
  similar(item: number, n: number, numItems: number): { readonly index: number; readonly score: number }[];
  /** How `similar` measures (for the header line). */
  readonly similarity: string;
  /** Rating models: predicted ratings are shown clipped to this. */
  readonly ratingRange?: readonly [number, number];
}

export interface Workload {
  /** For messages and tests: 'gradient', 'knn'. */
  readonly name: string;
  /** The models this workload serves. */
  models(): readonly ModelListing[];
  handles(model: string): boolean;
  launchInfo(model: string): LaunchInfo;
  /** Checks the aggregator's flags (FlagError on a bad one) and returns the role, ready to connect. */
  aggregator(model: string, flags: FlagValues): AggregatorRole;
  /** Trains until the data ends; resolves with the steps done. */
  runTrainer(o: TrainerOptions): Promise<{ readonly steps: number }>;
  serveEvaluator(o: EvaluatorOptions): Promise<ServedEvaluator>;
  /** Parameters to checkpoint (kNN has none). */
  hasParameters(config: Pick<JobConfig, 'model'>): boolean;
  /** The step total the launcher's progress counts to, when the workload plans it (kNN: blocks). */
  plannedSteps(config: JobConfig, strategy: string, trainers: number): number | undefined;
  /** What one step's examples are (rating rows, user or item rows, images) for the progress line. */
  exampleKind(config: JobConfig): string | undefined;
  /** Writes the trained model into `dir` (read from the live job over `nc`); returns the files written. */
  saveModel(nc: NatsConnection, config: JobConfig, dir: string, extra: SaveExtra): Promise<Record<string, string>>;
  /** Checks that `dir` holds what `openModel` reads (before the dataset is loaded); ModelOpenError if not. */
  checkModel(dir: string, config: JobConfig): void;
  /** Opens a model `saveModel` wrote, with the dataset it was trained on. */
  openModel(dir: string, config: JobConfig, dataset: JobDataset, ratingRange: readonly [number, number] | undefined): OpenedModel;
}

const registry: Workload[] = [];

/** Registers a workload; later registrations win for the names they handle (like a kernel registry). */
export function registerWorkload(w: Workload): void {
  const i = registry.findIndex((x) => x.name === w.name);
  if (i >= 0) registry.splice(i, 1);
  registry.unshift(w);
}

/** The workload serving `model`, or an UnknownWorkloadError naming the known models. */
export function workloadFor(model: string): Workload {
  const w = registry.find((x) => x.handles(model));
  if (w === undefined)
    throw new UnknownWorkloadError(
      model,
      listModels().map((m) => m.name),
    );
  return w;
}

/** Every registered model, the gradient models first. */
export function listModels(): ModelListing[] {
  return [...registry].reverse().flatMap((w) => w.models());
}
