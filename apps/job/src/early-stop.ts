// Early stopping on a validation set carved from training (--validation F|file:PATH, served by
// the data shards as the 'validation' kind and never trained on): flags.
import { saveParams } from '@actorflow/embeddings';
import { selectBackend, type Engine } from '@actorflow/engine';
import { heldOutOf, loadJobDataset, type DatasetSpec, type JobConfig } from '@actorflow/feed';
import { createModel, type TrainableModel } from '@actorflow/models';
import { lossReportCodec, subjects } from '@actorflow/protocol';
import { PsClient, evaluateModel, headlineMetric, mergeSnapshots, type EvalData, type ParamStore } from '@actorflow/strategies';
import type { NatsConnection, Subscription } from '@actorflow/bus';

export const EARLY_STOP_FLAG_OPTIONS = {
  validation: { type: 'string' },
  'early-stop': { type: 'string' },
} as const;

export const EARLY_STOP_USAGE = `  --validation F|file:PATH   a validation set carved from training (a seeded fraction, e.g. 0.05, or a
                             ratings file whose ratings are removed from training), evaluated each epoch
  --early-stop PATIENCE      with --validation: stop when the validation metric has not improved for
                             PATIENCE epochs; the best epoch's model is what the job keeps`;

/** --early-stop PATIENCE (needs --validation). */
export function earlyStopFlags(v: { 'early-stop'?: string; strategy?: string }, validation: string | undefined, fail: (message: string) => Error): { earlyStop?: number } {
  if (validation !== undefined && v.strategy === 'mirrored') {
    throw fail(`--validation / --early-stop are implemented for --strategy ps (the launcher scores the parameter-server snapshot each epoch), not mirrored yet`);
  }
  const raw = v['early-stop'];
  if (raw === undefined) return {};
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1) throw fail(`--early-stop takes a patience in epochs, a positive integer, got '${raw}'`);
  if (validation === undefined) throw fail(`--early-stop ${raw} needs a validation set: add --validation 0.05 (a fraction of the training ratings) or --validation file:PATH`);
  return { earlyStop: n };
}

// ---------------------------------------------------------------------------------------------
// The early stopper: in the launcher process, at each epoch boundary (the first loss report of a
// new epoch) it pulls the parameters (ps: every shard's snapshot, merged), evaluates them on the
// validation rows with evaluateModel, keeps the best, and resolves `stopped` when the metric has
// not improved for `patience` epochs (the launcher then finishes the job as when the trainers
// end). finish() evaluates the best epoch's parameters on the test set and saves them as the model.

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
}
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
    if (this.#o.strategy !== 'ps')
      throw new EarlyStopError(`--validation / --early-stop are implemented for --strategy ps (the launcher pulls the parameter-server snapshot each epoch); mirrored is not yet supported`);
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

  async #params(): Promise<ParamStore> {
    const ctx = this.#ctx;
    if (ctx === undefined) throw new EarlyStopError('the early stopper never started');
    const ps = new PsClient(this.#o.nc, { job: this.#o.job, shards: ctx.config.psShards, retry: { deadlineMs: 30_000 } });
    return mergeSnapshots(ctx.model, ctx.config.seed, await ps.snapshot());
  }

  async #evaluate(epoch: number, step: number): Promise<void> {
    const ctx = this.#ctx;
    if (ctx === undefined || this.#stopped) return;
    const params = await this.#params();
    const value = evaluateModel(ctx.engine, ctx.model, params, ctx.validation)[ctx.metric.name];
    this.curve.push({ epoch, step, value });
    const better = this.#best === undefined || (ctx.metric.lowerIsBetter ? value < this.#best.value : value > this.#best.value);
    if (better) this.#best = { epoch, value, params };
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
    const metrics = evaluateModel(ctx.engine, ctx.model, best.params, ctx.test);
    this.#o.log(
      `best epoch ${best.epoch} (validation ${ctx.metric.name} ${best.value.toFixed(4)}) saved as the model; test ${Object.entries(metrics)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')}`,
    );
    return { metrics, validation: log };
  }

  close(): void {
    this.#sub?.unsubscribe();
  }
}
