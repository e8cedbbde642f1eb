// What a finished job leaves in its output folder, written the same way by the launcher and by an
// aggregator started by hand with --out: the trained model (model/params.bin + config.json, or
// what a workload saves instead), metrics.json, and the evaluation history (eval.jsonl, eval.csv).
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RemoteError, requestWithRetry, type NatsConnection } from '@actorflow/bus';
import { saveParams } from '@actorflow/embeddings';
import type { TrainableModel } from '@actorflow/models';
import { snapshotCodec, subjects, type EvalReport, type JobConfig, type Snapshot } from '@actorflow/protocol';
import { PsClient, mergeSnapshots, nonFiniteParam, type ParamStore } from '@actorflow/strategies';
import type { SaveExtra } from './workload.ts';

/** Saving refused: the parameters hold a NaN or an infinity (training diverged). */
export class ModelNotSavedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelNotSavedError';
  }
}

/**
 * The job's current parameter snapshots: the replica mirrored rank 0 last sent to the aggregator,
 * else (ps) every parameter shard's rows. A mirrored job with no replica yet is an error.
 */
export async function jobSnapshots(nc: NatsConnection, config: JobConfig, o: { readonly mirrored?: boolean } = {}): Promise<Snapshot[]> {
  try {
    return [snapshotCodec.decode(await requestWithRetry(nc, subjects.ctl(config.job, 'snapshot'), new Uint8Array(0), { attemptTimeoutMs: 60_000 }))];
  } catch (err) {
    if (!(err instanceof RemoteError && err.code === 'NO_SNAPSHOT') || o.mirrored === true || config.strategy === 'mirrored') throw err;
    return new PsClient(nc, { job: config.job, shards: config.psShards }).snapshot();
  }
}

/** Writes params.bin and config.json (with the dataset it was trained on, so `recommend` can map ids) into `dir`. */
export function writeGradientModel(dir: string, model: TrainableModel<unknown>, params: ParamStore, config: JobConfig, extra: SaveExtra): Record<string, string> {
  // Never save a corrupted model: a NaN/Inf anywhere means training went wrong.
  const bad = nonFiniteParam(params);
  if (bad !== undefined)
    throw new ModelNotSavedError(
      `refusing to save the model: parameter '${bad.name}' holds ${bad.value} at index ${bad.index} (training diverged or was fed bad values); nothing was written to ${dir}`,
    );
  mkdirSync(dir, { recursive: true });
  const paths = { params: join(dir, 'params.bin'), config: join(dir, 'config.json') };
  saveParams(paths.params, { tables: Object.values(params.tables), dense: params.dense, meta: { job: config.job, model: config.model } });
  writeFileSync(paths.config, `${JSON.stringify({ ...config, dataset: extra.dataset, ...(extra.ratingRange !== undefined ? { ratingRange: extra.ratingRange } : {}) }, null, 2)}\n`);
  return paths;
}

/** Merges the live job's parameters and writes them (writeGradientModel). */
export async function saveGradientModel(nc: NatsConnection, model: TrainableModel<unknown>, config: JobConfig, dir: string, extra: SaveExtra): Promise<Record<string, string>> {
  const params = mergeSnapshots(model, config.seed, await jobSnapshots(nc, config, extra.mirrored !== undefined ? { mirrored: extra.mirrored } : {}));
  return writeGradientModel(dir, model, params, config, extra);
}

/** Appends a result to DIR/eval.jsonl and DIR/eval.csv (header written once, from the first result's metrics). */
export function appendEvalHistory(dir: string, report: EvalReport): void {
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'eval.jsonl'), `${JSON.stringify(report)}\n`);
  const csv = join(dir, 'eval.csv');
  const keys = Object.keys(report.metrics).sort();
  if (!existsSync(csv)) appendFileSync(csv, `ts,step,final,${keys.join(',')}\n`);
  appendFileSync(csv, `${report.ts},${report.step},${report.final === true},${keys.map((k) => report.metrics[k]).join(',')}\n`);
}

/** Writes DIR/metrics.json. */
export function writeMetricsJson(dir: string, result: object): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'metrics.json');
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}
