// The aggregator of gradient models: owns the job configuration (answers <job>.ctl.config), holds
// one shard of the parameters for ps trainers, and (shard 0) keeps the latest replica mirrored
// rank 0 sends (<job>.ctl.checkpoint in, <job>.ctl.snapshot and <job>.ctl.state out) — so one
// aggregator serves either strategy.
import { readFileSync } from 'node:fs';
import { FlagError, HandlerError, actorLog, hyperFlags, intFlag, numberFlag, serveLarge, type NatsConnection, type Subscription } from '@actorflow/bus';
import { DataClient, serveJobConfig, type JobConfig } from '@actorflow/feed';
import { createModel, modelEntry, userHyper, withDataHyper, type ModelEntry } from '@actorflow/models';
import { OPTIMIZER_NAMES, snapshotCodec, stateRequestCodec, subjects, trainerStateCodec } from '@actorflow/protocol';
import { ParameterShard, parseStaleness, servePsShard, storeToSnapshot } from '@actorflow/strategies';
import type { AggregatorRole, FlagValues, ServedAggregator } from './workload.ts';

const str = (v: FlagValues, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

/** Checks a gradient model's aggregator flags (FlagError on a bad one); `serve` then waits for the data and serves. */
export function gradientAggregator(modelName: string, v: FlagValues): AggregatorRole {
  let entry: ModelEntry;
  try {
    entry = modelEntry(modelName);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const recommended = entry.recommended?.optimizer;
  const strategy = str(v, 'strategy') ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const job = str(v, 'job') ?? 'local';
  const shard = intFlag('ps-shard', str(v, 'ps-shard'), 0);
  const psShards = intFlag('ps-shards', str(v, 'ps-shards'), 1, 1);
  if (shard >= psShards) throw new FlagError(`--ps-shard ${shard} must be below --ps-shards ${psShards}`);
  const optimizerName = str(v, 'optimizer') ?? recommended?.name ?? 'adam';
  if (!(OPTIMIZER_NAMES as readonly string[]).includes(optimizerName)) throw new FlagError(`--optimizer must be ${OPTIMIZER_NAMES.join(', ')}, got '${optimizerName}'`);
  const dim = str(v, 'dim');
  const initStd = str(v, 'init-std');
  const hyperFlags = Array.isArray(v.hyper) ? (v.hyper as readonly string[]) : [];
  const hyper = parseHyper(entry, [...(dim !== undefined ? [`dim=${dim}`] : []), ...(initStd !== undefined ? [`initStd=${initStd}`] : []), ...hyperFlags]);
  const staleness = str(v, 'staleness') ?? 'none';
  try {
    parseStaleness(staleness);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const seed = intFlag('seed', str(v, 'seed'), 42);
  const worldSize = intFlag('world-size', str(v, 'world-size'), 1, 1);
  const dataShards = intFlag('data-shards', str(v, 'data-shards'), 1, 1);
  const own = recommended !== undefined && optimizerName === recommended.name;
  const lr = numberFlag('lr', str(v, 'lr'), own ? (recommended.lr ?? 0.01) : 0.01, { min: 0 });
  const l2 = numberFlag('l2', str(v, 'l2'), own ? (recommended.l2 ?? 0) : 2e-4, { min: 0 });
  const momentumRaw = str(v, 'momentum');
  const momentum = momentumRaw !== undefined ? numberFlag('momentum', momentumRaw, 0, { min: 0 }) : undefined;
  const restoreShard = str(v, 'restore-shard');
  const restoreTrainer = str(v, 'restore-trainer');
  const shardBytes = restoreShard !== undefined ? readRestoreFile('restore-shard', restoreShard) : undefined;
  const trainerBytes = restoreTrainer !== undefined ? readRestoreFile('restore-trainer', restoreTrainer) : undefined;
  const log = actorLog(`aggregator ${shard}/${psShards}`);
  return {
    job,
    name: `aggregator-${shard}`,
    rank: `${shard}/${psShards}`,
    log,
    serve: async (nc: NatsConnection): Promise<ServedAggregator> => {
      const data = new DataClient(nc, { job, shards: dataShards });
      log(`job ${job}: waiting for a data shard (start one with \`npx nx serve data-shard -- --job ${job}\`) …`);
      const info = await data.waitForInfo(600_000, (n) => {
        if (n % 20 === 0) log(`still waiting for a data shard of job ${job} …`);
      });
      const config: JobConfig = {
        job,
        strategy,
        worldSize,
        model: modelName,
        // The data decides sizes (users, items, classes) and the mean: filled in for models that take them.
        hyper: withDataHyper(modelName, { numUsers: info.numUsers, numItems: info.numItems, globalMean: info.globalMean, numClasses: info.numClasses ?? 10 }, hyper),
        optimizer: {
          ...(own ? recommended : {}),
          name: optimizerName as JobConfig['optimizer']['name'],
          lr,
          l2,
          ...(momentum !== undefined ? { momentum } : {}),
          ...(v['dense-updates'] === true ? { dense: true } : {}),
        },
        psShards,
        staleness,
        seed,
      };
      let model;
      try {
        model = createModel(config.model, config.hyper);
      } catch (err) {
        throw new FlagError((err as Error).message);
      }
      const ps = new ParameterShard({ model, shard, of: psShards, seed, optimizer: config.optimizer, staleness: parseStaleness(staleness), log });
      if (shardBytes !== undefined) {
        ps.restoreState(shardBytes);
        log(`parameter shard ${shard}/${psShards} restored from ${restoreShard} (version ${ps.version})`);
      }
      const subs = servePsShard(nc, job, ps);
      // Every shard answers config requests (queue group): they all hold the same configuration.
      subs.push(serveJobConfig(nc, config));
      if (shard === 0) subs.push(...serveReplicaStore(nc, job, log, trainerBytes, restoreTrainer));
      log(
        `job ${job}: config owner${shard === 0 ? ' and mirrored snapshot store' : ''}, parameter shard ${shard}/${psShards} of ${config.model} (${info.kind === 'images' ? `${info.trainRows} images` : `${info.numUsers} users × ${info.numItems} items`}) ready`,
      );
      let last = 0; // quiet until the first push
      const timer = setInterval(() => {
        const s = ps.stats;
        const seen = s.pushes + s.rejected + s.noReply;
        const rejected = Object.entries(s.rejectedByReason)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ');
        if (seen !== last)
          log(
            `version ${s.version}: ${s.pushes} pushes applied, ${s.dropped} dropped, ${s.rejected} rejected${rejected !== '' ? ` (${rejected})` : ''}${s.noReply > 0 ? `, ${s.noReply} without reply subject` : ''}`,
          );
        last = seen;
      }, 5_000);
      timer.unref();
      return {
        config,
        configOwner: shard === 0,
        stats: () => {
          const st = ps.stats;
          const byReason = Object.fromEntries(Object.entries(st.rejectedByReason).map(([k, n]) => [`rejected.${k}`, n ?? 0]));
          return { version: st.version, pushes: st.pushes, dropped: st.dropped, rejected: st.rejected, noReply: st.noReply, ...byReason };
        },
        stop: () => {
          clearInterval(timer);
          subs.forEach((s) => s.unsubscribe());
        },
      };
    },
  };
}

/**
 * Mirrored: rank 0 sends its replica with optimizer state and data position (a TrainerState)
 * here; restarted ranks resume from it (<job>.ctl.state), the launcher saves it as the
 * checkpoint's trainer.bin, the evaluator scores it (<job>.ctl.snapshot, parameters only).
 */
function serveReplicaStore(nc: NatsConnection, job: string, log: (line: string) => void, restore: Uint8Array | undefined, restoreFrom: string | undefined): Subscription[] {
  let latest: { bytes: Uint8Array; step: number; snapshot: () => Uint8Array } | undefined;
  const keep = (bytes: Uint8Array): number => {
    const state = trainerStateCodec.decode(bytes); // validated whole before it replaces anything
    if (state.job !== job) throw new HandlerError('WRONG_JOB', `a replica of job ${state.job} sent to job ${job}`);
    if (latest !== undefined && state.step < latest.step) throw new HandlerError('STALE', `replica of step ${state.step} is older than the stored step ${latest.step}`);
    let snap: Uint8Array | undefined;
    const params = { tables: Object.fromEntries(Object.entries(state.params.tables).map(([name, t]) => [name, { name, ...t }])), dense: { ...state.params.dense } };
    latest = { bytes, step: state.step, snapshot: () => (snap ??= snapshotCodec.encode(storeToSnapshot(job, state.step, params))) };
    return state.step;
  };
  if (restore !== undefined) log(`mirrored replica of step ${keep(restore)} restored from ${restoreFrom}`);
  return [
    serveLarge(nc, subjects.ctl(job, 'checkpoint'), (payload) => {
      let step: number;
      try {
        step = keep(payload);
      } catch (err) {
        if (err instanceof HandlerError) throw err;
        throw new HandlerError('MALFORMED', `not a trainer state: ${(err as Error).message}`);
      }
      log(`mirrored replica of step ${step} stored`);
      return new Uint8Array(0);
    }),
    serveLarge(nc, subjects.ctl(job, 'snapshot'), () => {
      if (latest === undefined) throw new HandlerError('NO_SNAPSHOT', 'no mirrored snapshot yet');
      return latest.snapshot();
    }),
    serveLarge(nc, subjects.ctl(job, 'state'), (payload) => {
      if (latest === undefined) throw new HandlerError('NO_STATE', 'no mirrored replica stored yet');
      // {"after": step}: only a newer replica is worth its bytes (the launcher polls).
      const { after } = stateRequestCodec.decode(payload);
      if (after !== undefined && latest.step <= after) throw new HandlerError('NOT_NEWER', `the stored replica (step ${latest.step}) is not newer than step ${after}`);
      return latest.bytes;
    }),
  ];
}

/** KEY=VALUE hyper-parameters typed by the model's defaults (number, boolean or string); unknown keys are errors. */
export function parseHyper(entry: ModelEntry, pairs: readonly string[]): Record<string, number | string | boolean> {
  return hyperFlags(pairs, userHyper(entry), { owner: 'this model' });
}

/** A checkpoint part named by a --restore-* flag; a missing file is a flag error naming it. */
function readRestoreFile(flag: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new FlagError(`--${flag} ${path}: ${(err as Error).message}`);
  }
}
