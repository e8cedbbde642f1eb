// npx nx serve aggregator [-- --ps-shard 0 --ps-shards 2 --model mf --dim 32 --lr 0.01 …]
// Owns the job configuration (answers <job>.ctl.config), holds one shard of the parameters for
// ps trainers, and keeps the latest snapshot mirrored rank 0 sends (<job>.ctl.checkpoint in,
// <job>.ctl.snapshot out) — so `nx serve aggregator` with no flags serves either strategy.
// With no NATS_URL and nothing on the default address, it starts a local nats-server.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, HandlerError, intFlag, numberFlag, registerActorService, runActor, serveLarge } from '@actorflow/bus';
import { snapshotCodec, subjects, trainerStateCodec } from '@actorflow/protocol';
import { DataClient, serveJobConfig, type JobConfig } from '@actorflow/feed';
import { createModel, listModels, modelEntry, userHyper, withDataHyper, type ModelEntry } from '@actorflow/models';
import { ParameterShard, parseStaleness, servePsShard, storeToSnapshot } from '@actorflow/strategies';
import { KNN_DEFAULTS, KNN_LAUNCH, KNN_MODEL, knnAggregatorFlags, serveKnnAggregator } from '@actorflow/knn';

const usage = `Usage: npx nx serve aggregator -- [options]
  --job ID                job id (default local)
  --strategy ps|mirrored  the default strategy reported in the config (both are served)
  --ps-shard I            this aggregator's parameter shard (default 0)
  --ps-shards K           parameter shards in the job (default 1)
  --data-shards K         data shards to expect (default 1)
  --model NAME            model (default mf); --list-models shows every model with its hyper-parameters;
                          knn: neighbourhood kNN (--hyper kind=item|user similarity=pearson k=40 blocks=8 …)
  --hyper KEY=VALUE       a model hyper-parameter (repeatable), e.g. --hyper dim=64 --hyper layers=64,32
  --dim D, --init-std S   shortcuts for --hyper dim=D / initStd=S
  --optimizer NAME        adam, adagrad, sgd or rmsprop (default: the model's recommended, else adam);
                          --lr, --l2, --momentum (defaults: the model's recommended, else 0.01 / 2e-4)
  --dense-updates         optimizer touches every row each step (PyTorch-style dense Adam with weight decay)
  --staleness POLICY      none (default), scale, drop:N, bound:N (SSP)
  --seed N                initialisation seed (default 42)
  --world-size N          ranks of a mirrored job (default 1; trainers may override)
  --restore-shard FILE    ps: start this parameter shard from a checkpoint part (parameters, optimizer state, version)
  --restore-trainer FILE  mirrored: start with this replica state (a checkpoint's trainer.bin) for the ranks to resume from
${busFlagsHelp}`;

await runActor('aggregator', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' },
      strategy: { type: 'string' },
      'ps-shard': { type: 'string' },
      'ps-shards': { type: 'string' },
      'data-shards': { type: 'string' },
      model: { type: 'string' },
      dim: { type: 'string' },
      'init-std': { type: 'string' },
      optimizer: { type: 'string' },
      lr: { type: 'string' },
      l2: { type: 'string' },
      momentum: { type: 'string' },
      hyper: { type: 'string', multiple: true },
      'list-models': { type: 'boolean' },
      'dense-updates': { type: 'boolean' },
      staleness: { type: 'string' },
      seed: { type: 'string' },
      'world-size': { type: 'string' },
      'restore-shard': { type: 'string' },
      'restore-trainer': { type: 'string' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  if (v['list-models'] === true) {
    for (const m of listModels())
      console.log(
        `${m.name.padEnd(10)} ${m.description}\n${''.padEnd(11)}${Object.entries(userHyper(m))
          .map(([k, d]) => `${k}=${String(d)}`)
          .join(' ')}`,
      );
    console.log(
      `${KNN_MODEL.padEnd(10)} ${KNN_LAUNCH.description}\n${''.padEnd(11)}${Object.entries(KNN_DEFAULTS)
        .map(([k, d]) => `${k}=${String(d)}`)
        .join(' ')}`,
    );
    return;
  }
  const modelName = v.model ?? 'mf';
  if (modelName === KNN_MODEL) {
    // kNN has no parameters: serve the config and collect the trainers' similarity blocks (libs/knn).
    const flags = knnAggregatorFlags(v);
    const log = actorLog('aggregator knn');
    const { hyper: _hyper, ...connFlags } = v;
    const conn = await connectActor(connFlags, { name: 'aggregator-knn', startLocalServer: true, log });
    await registerActorService(conn.nc, { role: 'aggregator', job: flags.job, rank: 'knn' });
    const knn = await serveKnnAggregator(conn.nc, flags, { data: new DataClient(conn.nc, { job: flags.job, shards: 1 }), serveConfig: (c) => serveJobConfig(conn.nc, c), log });
    exitOnSignals(conn, () => knn.stop());
    return;
  }
  let entry;
  try {
    entry = modelEntry(modelName);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const recommended = entry.recommended?.optimizer;
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const job = v.job ?? 'local';
  const shard = intFlag('ps-shard', v['ps-shard'], 0);
  const psShards = intFlag('ps-shards', v['ps-shards'], 1, 1);
  if (shard >= psShards) throw new FlagError(`--ps-shard ${shard} must be below --ps-shards ${psShards}`);
  const optimizerName = v.optimizer ?? recommended?.name ?? 'adam';
  if (!['adam', 'adagrad', 'sgd', 'rmsprop'].includes(optimizerName)) throw new FlagError(`--optimizer must be adam, adagrad, sgd or rmsprop, got '${optimizerName}'`);
  const hyper = parseHyper(entry, [...(v.dim !== undefined ? [`dim=${v.dim}`] : []), ...(v['init-std'] !== undefined ? [`initStd=${v['init-std']}`] : []), ...(v.hyper ?? [])]);
  const staleness = v.staleness ?? 'none';
  try {
    parseStaleness(staleness);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const seed = intFlag('seed', v.seed, 42);
  const log = actorLog(`aggregator ${shard}/${psShards}`);
  const { hyper: _hyperFlags, ...connFlags } = v;
  const conn = await connectActor(connFlags, { name: `aggregator-${shard}`, startLocalServer: true, log });
  // The shard's counters (applied, dropped, rejected by reason) in $SRV.STATS once it exists.
  const live: { stats?: () => Record<string, number> } = {};
  await registerActorService(conn.nc, { role: 'aggregator', job, rank: `${shard}/${psShards}`, stats: () => live.stats?.() ?? {} });
  const data = new DataClient(conn.nc, { job, shards: intFlag('data-shards', v['data-shards'], 1, 1) });
  log(`job ${job}: waiting for a data shard (start one with \`npx nx serve data-shard -- --job ${job}\`) …`);
  const info = await data.waitForInfo(600_000, (n) => {
    if (n % 20 === 0) log(`still waiting for a data shard of job ${job} …`);
  });
  const config: JobConfig = {
    job,
    strategy,
    worldSize: intFlag('world-size', v['world-size'], 1, 1),
    model: modelName,
    // The data decides sizes (users, items, classes) and the mean: filled in for models that take them.
    hyper: withDataHyper(modelName, { numUsers: info.numUsers, numItems: info.numItems, globalMean: info.globalMean, numClasses: info.numClasses ?? 10 }, hyper),
    optimizer: {
      ...(optimizerName === recommended?.name ? recommended : {}),
      name: optimizerName as JobConfig['optimizer']['name'],
      lr: numberFlag('lr', v.lr, optimizerName === recommended?.name ? (recommended.lr ?? 0.01) : 0.01, { min: 0 }),
      l2: numberFlag('l2', v.l2, optimizerName === recommended?.name ? (recommended.l2 ?? 0) : 2e-4, { min: 0 }),
      ...(v.momentum !== undefined ? { momentum: numberFlag('momentum', v.momentum, 0, { min: 0 }) } : {}),
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
  if (v['restore-shard'] !== undefined) {
    ps.restoreState(readRestoreFile('restore-shard', v['restore-shard']));
    log(`parameter shard ${shard}/${psShards} restored from ${v['restore-shard']} (version ${ps.version})`);
  }
  const subs = servePsShard(conn.nc, job, ps);
  live.stats = () => {
    const st = ps.stats;
    const byReason = Object.fromEntries(Object.entries(st.rejectedByReason).map(([k, n]) => [`rejected.${k}`, n ?? 0]));
    return { version: st.version, pushes: st.pushes, dropped: st.dropped, rejected: st.rejected, noReply: st.noReply, ...byReason };
  };
  // Every shard answers config requests (queue group): they all hold the same configuration.
  subs.push(serveJobConfig(conn.nc, config));
  if (shard === 0) {
    // Mirrored: rank 0 sends its replica with optimizer state and data position (a TrainerState)
    // here; restarted ranks resume from it (<job>.ctl.state), the launcher saves it as the
    // checkpoint's trainer.bin, the evaluator scores it (<job>.ctl.snapshot, parameters only).
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
    if (v['restore-trainer'] !== undefined) log(`mirrored replica of step ${keep(readRestoreFile('restore-trainer', v['restore-trainer']))} restored from ${v['restore-trainer']}`);
    subs.push(
      serveLarge(conn.nc, subjects.ctl(job, 'checkpoint'), (payload) => {
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
      serveLarge(conn.nc, subjects.ctl(job, 'snapshot'), () => {
        if (latest === undefined) throw new HandlerError('NO_SNAPSHOT', 'no mirrored snapshot yet');
        return latest.snapshot();
      }),
      serveLarge(conn.nc, subjects.ctl(job, 'state'), (payload) => {
        if (latest === undefined) throw new HandlerError('NO_STATE', 'no mirrored replica stored yet');
        // {"after": step}: only a newer replica is worth its bytes (the launcher polls).
        const after = payload.length > 0 ? (JSON.parse(new TextDecoder().decode(payload)) as { after?: unknown }).after : undefined;
        if (typeof after === 'number' && latest.step <= after) throw new HandlerError('NOT_NEWER', `the stored replica (step ${latest.step}) is not newer than step ${after}`);
        return latest.bytes;
      }),
    );
  }
  log(
    `job ${job}: config owner${shard === 0 ? ' and mirrored snapshot store' : ''}, parameter shard ${shard}/${psShards} of ${config.model} (${info.kind === 'images' ? `${info.trainRows} images` : `${info.numUsers} users × ${info.numItems} items`}) ready`,
  );
  exitOnSignals(conn, () => subs.forEach((s) => s.unsubscribe()));
  let last = 0; // quiet until the first push
  setInterval(() => {
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
  }, 5_000).unref();
});

/** KEY=VALUE hyper-parameters typed by the model's defaults (number, boolean or string); unknown keys are errors. */
function parseHyper(entry: ModelEntry, pairs: readonly string[]): Record<string, number | string | boolean> {
  const defaults = userHyper(entry);
  const out: Record<string, number | string | boolean> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new FlagError(`--hyper takes KEY=VALUE, got '${kv}'`);
    const key = kv.slice(0, eq);
    const raw = kv.slice(eq + 1);
    if (!(key in defaults)) {
      throw new FlagError(`--hyper ${key}: this model has no such hyper-parameter; it takes ${Object.keys(defaults).join(', ')}`);
    }
    const d = defaults[key];
    if (typeof d === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new FlagError(`--hyper ${key} must be a number, got '${raw}'`);
      out[key] = n;
    } else if (typeof d === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw new FlagError(`--hyper ${key} must be true or false, got '${raw}'`);
      out[key] = raw === 'true';
    } else out[key] = raw;
  }
  return out;
}

/** A checkpoint part named by a --restore-* flag; a missing file is a flag error naming it. */
function readRestoreFile(flag: string, path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new FlagError(`--${flag} ${path}: ${(err as Error).message}`);
  }
}
