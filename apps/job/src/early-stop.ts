// Early stopping on a validation set carved from training (--validation F|file:PATH, served by
// the data shards as the 'validation' kind and never trained on): flags.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { requestLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { saveParams } from '@actorflow/embeddings';
import { selectBackend, type Engine } from '@actorflow/engine';
import { heldOutOf, loadJobDataset, type DatasetSpec, type JobConfig } from '@actorflow/feed';
import { createModel, listModels, type RecommendedEarlyStop, type TrainableModel } from '@actorflow/models';
import { lossReportCodec, subjects, trainerStateCodec } from '@actorflow/protocol';
import { PsClient, evaluateModel, headlineMetric, initParams, mergeSnapshots, type EvalData, type ParamStore } from '@actorflow/strategies';

export const EARLY_STOP_FLAG_OPTIONS = {
  validation: { type: 'string' },
  'early-stop': { type: 'string' },
} as const;

export type { RecommendedEarlyStop };

/** `mf, svdpp, ncf: --validation 0.05 --early-stop 2 --epochs 10`, one line per set of values. */
function recommendedLines(): string[] {
  const byValues = new Map<string, string[]>();
  for (const m of listModels()) {
    const r = m.recommended?.earlyStop;
    if (r === undefined) continue;
    const key = `--validation ${r.validation} --early-stop ${r.patience} --epochs ${r.maxEpochs}`;
    byValues.set(key, [...(byValues.get(key) ?? []), m.name]);
  }
  return [...byValues].map(([flags, names]) => `${names.join(', ')}: ${flags}`);
}

export const EARLY_STOP_USAGE = `  --validation F|file:PATH   a validation set carved from training (a seeded fraction, e.g. 0.05, or a
                             ratings file whose ratings are removed from training), evaluated each epoch
  --early-stop PATIENCE      with --validation: stop when the validation metric has not improved for
                             PATIENCE epochs; the best epoch's model is what the job keeps. 0: no early
                             stopping (the model's recommended --epochs, no validation set unless --validation)
                             Given none of --epochs, --validation, --early-stop, a model that recommends early
                             stopping runs with it (--epochs N or --early-stop 0 turns it off):
${recommendedLines()
  .map((l) => `                               ${l}`)
  .join('\n')}`;

/**
 * The model's recommended early stopping, when the job is given none of --epochs, --validation,
 * --early-stop (on the command line or as --config keys: the file's keys arrive here as flags).
 */
export function recommendedEarlyStop(v: { epochs?: string; validation?: string; 'early-stop'?: string }, recommended: RecommendedEarlyStop | undefined): RecommendedEarlyStop | undefined {
  if (recommended === undefined || v.epochs !== undefined || v.validation !== undefined || v['early-stop'] !== undefined) return undefined;
  return recommended;
}

/** The launcher's line for a job that early-stops because its model recommends it. */
export function describeRecommendedEarlyStop(r: RecommendedEarlyStop): string {
  const percent = Number((r.validation * 100).toPrecision(6));
  return `early stopping: validation ${percent} % of training, patience ${r.patience}, up to ${r.maxEpochs} epochs (the model's recommended; --epochs N or --early-stop 0 to turn it off)`;
}

/** --early-stop PATIENCE (needs --validation); --early-stop 0: no early stopping. */
export function earlyStopFlags(v: { 'early-stop'?: string; strategy?: string; model?: string }, validation: string | undefined, fail: (message: string) => Error): { earlyStop?: number } {
  if (validation !== undefined) {
    const name = v.model ?? 'mf';
    const kind = ratingModelKind(name);
    if (kind !== undefined) throw fail(`--validation / --early-stop are for gradient rating models (validation RMSE each epoch); ${name} is ${kind}`);
  }
  const raw = v['early-stop'];
  if (raw === undefined) return {};
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0) throw fail(`--early-stop takes a patience in epochs, a positive integer (or 0: no early stopping), got '${raw}'`);
  if (n === 0) return {};
  if (validation === undefined) throw fail(`--early-stop ${raw} needs a validation set: add --validation 0.05 (a fraction of the training ratings) or --validation file:PATH`);
  return { earlyStop: n };
}

/** Undefined for a gradient rating model (what early stopping scores); else what the model is, for the message. */
function ratingModelKind(name: string): string | undefined {
  const entry = listModels().find((m) => m.name === name);
  if (entry === undefined) return 'not a gradient model (no epochs to stop)';
  let model: TrainableModel<unknown>;
  try {
    // Sizes the data decides, small: only the model's kind is wanted here.
    model = entry.create({ ...entry.defaults, numUsers: 2, numItems: 2, numClasses: 10, globalMean: 3 });
  } catch {
    return undefined; // the launcher's start-time check still applies
  }
  const task = model.task ?? 'rating';
  const input = model.input ?? 'ratings';
  return task === 'rating' && input === 'ratings' ? undefined : `a ${task} model of ${input}`;
}

// ---------------------------------------------------------------------------------------------
// The early stopper: in the launcher process, at each epoch boundary (the first loss report of a
// new epoch) it pulls the parameters (ps: every shard's snapshot, merged; mirrored: the replica
// rank 0 sent at the epoch's end, libs/workloads' onEpochEnd), evaluates them on the validation
// rows with evaluateModel, keeps the best, and resolves `stopped` when the metric has not improved
// for `patience` epochs (the launcher then finishes the job as when the trainers end). finish()
// evaluates the best epoch's parameters on the test set, saves them as the model, and writes them
// to <out>/checkpoints/best/ — outside the step-numbered rotation, so --keep-checkpoints never
// removes them (mirrored: the whole TrainerState, as a step checkpoint's trainer.bin; ps: the merged parameters).

export class EarlyStopError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EarlyStopError';
  }
}

export interface ValidationPoint {
  /** The epoch just finished (1-based, as progress shows them). */
  readonly epoch: number;
  readonly step: number;
  readonly value: number;
}

/** metrics.json's `validation` block (and `bestEpoch` beside it). */
export interface ValidationLog {
  readonly metric: string;
  readonly lowerIsBetter: boolean;
  readonly patience?: number;
  readonly curve: readonly ValidationPoint[];
  readonly bestEpoch?: number;
  readonly stoppedEarly: boolean;
}

export interface EarlyStopOptions {
  readonly nc: NatsConnection;
  readonly job: string;
  readonly strategy: 'ps' | 'mirrored';
  readonly seed: number;
  /** The job's dataset spec (with its validation spec), as the data shards load it. */
  readonly dataset: DatasetSpec;
  /** Absent: the validation curve is recorded, but nothing stops. */
  readonly patience?: number;
  readonly log: (line: string) => void;
}

interface Best {
  readonly epoch: number;
  readonly value: number;
  readonly params: ParamStore;
  /** Mirrored: the replica's TrainerState bytes (a resumable checkpoint part). */
  readonly state?: Uint8Array;
  readonly step?: number;
}

/** What #params pulled: the parameters and, for mirrored, the replica they came from. */
interface Pulled {
  readonly params: ParamStore;
  readonly state?: Uint8Array;
  readonly step?: number;
  /** Mirrored: the replica's epoch (0-based) and steps into it. */
  readonly at?: { readonly epoch: number; readonly stepInEpoch: number };
}

/** The directory (beside the rotated step checkpoints) where finish() keeps the best epoch. */
export const BEST_CHECKPOINT_DIR = 'best';

const enc = new TextEncoder();
interface Ctx {
  readonly engine: Engine;
  readonly model: TrainableModel<unknown>;
  readonly config: JobConfig;
  readonly validation: EvalData;
  readonly test: EvalData;
  readonly metric: { readonly name: string; readonly lowerIsBetter: boolean };
}

export class EarlyStopper {
  readonly #o: EarlyStopOptions;
  readonly curve: ValidationPoint[] = [];
  #best: Best | undefined;
  #stopped = false;
  #resolveStop: () => void = () => undefined;
  readonly stopped: Promise<void>;
  #sub: Subscription | undefined;
  #epoch = 0;
  #queue: Promise<void> = Promise.resolve();
  #ctx: Ctx | undefined;

  constructor(o: EarlyStopOptions) {
    this.#o = o;
    this.stopped = new Promise((r) => (this.#resolveStop = r));
  }

  /** Once the data shards and the aggregator answer: fetch the validation and test rows, then watch the epochs. */
  async start(config: JobConfig): Promise<void> {
    const model = createModel(config.model, config.hyper);
    const metric = headlineMetric(model);
    if ((model.task ?? 'rating') !== 'rating' || (model.input ?? 'ratings') !== 'ratings')
      throw new EarlyStopError(`--validation / --early-stop are for rating models (validation RMSE); ${config.model} is a ${model.task ?? 'rating'} model of ${model.input ?? 'ratings'}`);
    // The launcher loads the dataset as every data shard does (same spec and seed, the same split):
    // it needs no data-shard permissions, and the test set is at hand after the shards stop.
    const ds = await loadJobDataset(this.#o.dataset);
    if (ds.validation === undefined) throw new EarlyStopError(`--early-stop needs --validation`);
    const test = heldOutOf(model, ds);
    const validation = { ...test, ratings: ds.validation };
    this.#ctx = { engine: await selectBackend({ backend: 'cpu' }), model, config, validation, test, metric };
    this.#o.log(
      `validation: ${validation.ratings?.length ?? 0} ratings, ${metric.name} each epoch${this.#o.patience !== undefined ? `, early stop after ${this.#o.patience} epoch(s) without improvement` : ''}`,
    );
    this.#sub = this.#o.nc.subscribe(subjects.loss, {
      callback: (_e, m) => {
        let r;
        try {
          r = lossReportCodec.decode(m.data);
        } catch {
          return;
        }
        if (r.job !== this.#o.job || r.epoch <= this.#epoch || this.#stopped) return;
        // The first report of a new epoch: the previous one is done (with one trainer, up to the steps reported since).
        const finished = r.epoch;
        this.#epoch = r.epoch;
        this.#queue = this.#queue.then(() => this.#evaluate(finished, r.step)).catch((err: unknown) => this.#o.log(`validation: evaluation failed: ${(err as Error).message}`));
      },
    });
  }

  async #params(): Promise<Pulled> {
    const ctx = this.#ctx;
    if (ctx === undefined) throw new EarlyStopError('the early stopper never started');
    if (this.#o.strategy === 'mirrored') {
      // The newest replica the aggregator holds: rank 0 sends each epoch's last one before the next
      // epoch's first step, so at the first loss report of an epoch it is the finished epoch's.
      const bytes = await requestLarge(this.#o.nc, subjects.ctl(this.#o.job, 'state'), enc.encode(JSON.stringify({ after: -1 })), { timeoutMs: 30_000 });
      const state = trainerStateCodec.decode(bytes);
      const params = initParams(ctx.model, ctx.config.seed);
      for (const [name, t] of Object.entries(state.params.tables)) {
        const table = params.tables[name];
        if (table === undefined || table.data.length !== t.data.length) throw new EarlyStopError(`the mirrored replica's table '${name}' does not fit model ${ctx.config.model}`);
        table.data.set(t.data);
      }
      for (const [name, v] of Object.entries(state.params.dense)) {
        const d = params.dense[name];
        if (d === undefined || d.length !== v.length) throw new EarlyStopError(`the mirrored replica's dense '${name}' does not fit model ${ctx.config.model}`);
        d.set(v);
      }
      return { params, state: bytes, step: state.step, at: { epoch: state.epoch, stepInEpoch: state.stepInEpoch } };
    }
    const ps = new PsClient(this.#o.nc, { job: this.#o.job, shards: ctx.config.psShards, retry: { deadlineMs: 30_000 } });
    return { params: mergeSnapshots(ctx.model, ctx.config.seed, await ps.snapshot()) };
  }

  async #evaluate(epoch: number, step: number): Promise<void> {
    const ctx = this.#ctx;
    if (ctx === undefined || this.#stopped) return;
    const pulled = await this.#params();
    const { params } = pulled;
    // Mirrored: the replica should be epoch `epoch`'s last (0-based epoch − 1); a periodic one may have overtaken it.
    if (pulled.at !== undefined && pulled.at.epoch !== epoch - 1)
      this.#o.log(`validation: the replica scored for epoch ${epoch} is of step ${pulled.step ?? '?'} (${pulled.at.stepInEpoch} step(s) into epoch ${pulled.at.epoch + 1})`);
    const value = evaluateModel(ctx.engine, ctx.model, params, ctx.validation)[ctx.metric.name];
    this.curve.push({ epoch, step: pulled.step ?? step, value });
    const better = this.#best === undefined || (ctx.metric.lowerIsBetter ? value < this.#best.value : value > this.#best.value);
    if (better) this.#best = { epoch, value, params, ...(pulled.state !== undefined ? { state: pulled.state } : {}), ...(pulled.step !== undefined ? { step: pulled.step } : {}) };
    const best = this.#best ?? { epoch, value, params };
    this.#o.log(`validation after epoch ${epoch}: ${ctx.metric.name} ${value.toFixed(4)}${better ? ' (best so far)' : ` (best ${best.value.toFixed(4)} at epoch ${best.epoch})`}`);
    const patience = this.#o.patience;
    if (patience !== undefined && epoch - best.epoch >= patience) {
      this.#stopped = true;
      this.#o.log(`early stop: no improvement for ${patience} epoch(s); keeping epoch ${best.epoch} (${ctx.metric.name} ${best.value.toFixed(4)})`);
      this.#resolveStop();
    }
  }

  /**
   * After the trainers ended (or the stop): the last epoch is evaluated too, then the best epoch's
   * parameters replace <modelDir>/params.bin and are scored on the test set. Returns the test
   * metrics and the validation log for metrics.json.
   */
  async finish(modelDir: string, jobMetrics: Readonly<Record<string, number>>, lastStep: number): Promise<{ metrics: Readonly<Record<string, number>>; validation: ValidationLog }> {
    this.#sub?.unsubscribe();
    await this.#queue;
    const ctx = this.#ctx;
    if (ctx === undefined) throw new EarlyStopError('the early stopper never started');
    if (!this.#stopped) await this.#evaluate(this.#epoch + 1, lastStep);
    const best = this.#best;
    const log: ValidationLog = {
      metric: ctx.metric.name,
      lowerIsBetter: ctx.metric.lowerIsBetter,
      ...(this.#o.patience !== undefined ? { patience: this.#o.patience } : {}),
      curve: this.curve,
      ...(best !== undefined ? { bestEpoch: best.epoch } : {}),
      stoppedEarly: this.#stopped,
    };
    if (best === undefined) return { metrics: jobMetrics, validation: log };
    saveParams(`${modelDir}/params.bin`, { tables: Object.values(best.params.tables), dense: best.params.dense, meta: { job: ctx.config.job, model: ctx.config.model, bestEpoch: best.epoch } });
    this.#keepBest(join(dirname(modelDir), 'checkpoints', BEST_CHECKPOINT_DIR), best);
    const metrics = evaluateModel(ctx.engine, ctx.model, best.params, ctx.test);
    this.#o.log(
      `best epoch ${best.epoch} (validation ${ctx.metric.name} ${best.value.toFixed(4)}) saved as the model; test ${Object.entries(metrics)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
    return { metrics, validation: log };
  }

  /**
   * <out>/checkpoints/best/: the best epoch, which the rotation of step-numbered checkpoints never
   * removes — best.json (epoch, step, metric) and trainer.bin (mirrored: the TrainerState, the part a
   * step checkpoint holds) or params.bin (ps: the merged parameters, as <out>/model holds them).
   */
  #keepBest(dir: string, best: Best): void {
    const ctx = this.#ctx;
    if (ctx === undefined) return;
    mkdirSync(dir, { recursive: true });
    if (best.state !== undefined) writeFileSync(join(dir, 'trainer.bin'), best.state);
    else saveParams(join(dir, 'params.bin'), { tables: Object.values(best.params.tables), dense: best.params.dense, meta: { job: ctx.config.job, model: ctx.config.model, bestEpoch: best.epoch } });
    const info = {
      job: ctx.config.job,
      model: ctx.config.model,
      strategy: this.#o.strategy,
      bestEpoch: best.epoch,
      ...(best.step !== undefined ? { step: best.step } : {}),
      metric: ctx.metric.name,
      value: best.value,
      part: best.state !== undefined ? 'trainer.bin' : 'params.bin',
    };
    writeFileSync(join(dir, 'best.json'), `${JSON.stringify(info, null, 2)}\n`);
  }

  close(): void {
    this.#sub?.unsubscribe();
  }
}
