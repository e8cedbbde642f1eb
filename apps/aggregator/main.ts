// npx nx serve aggregator [-- --ps-shard 0 --ps-shards 2 --model mf --dim 32 --lr 0.01 …]
// Owns the job configuration (answers <job>.ctl.config), holds one shard of the parameters for
// ps trainers, and keeps the latest snapshot mirrored rank 0 sends (<job>.ctl.checkpoint in,
// <job>.ctl.snapshot out) — so `nx serve aggregator` with no flags serves either strategy.
// With no NATS_URL and nothing on the default address, it starts a local nats-server.
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, HandlerError, intFlag, numberFlag, runActor, serveLarge } from '@actorflow/bus';
import { snapshotCodec, subjects } from '@actorflow/protocol';
import { DataClient, serveJobConfig, type JobConfig } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { ParameterShard, parseStaleness, servePsShard } from '@actorflow/strategies';

const usage = `Usage: npx nx serve aggregator -- [options]
  --job ID                job id (default local)
  --strategy ps|mirrored  the default strategy reported in the config (both are served)
  --ps-shard I            this aggregator's parameter shard (default 0)
  --ps-shards K           parameter shards in the job (default 1)
  --data-shards K         data shards to expect (default 1)
  --model NAME            model (default mf); --dim D (default 16), --init-std S (default 0.1)
  --optimizer NAME        adam (default), adagrad or sgd; --lr (default 0.01), --l2 (default 2e-4), --momentum
  --staleness POLICY      none (default), scale, drop:N, bound:N (SSP)
  --seed N                initialisation seed (default 42)
  --world-size N          ranks of a mirrored job (default 1; trainers may override)
${busFlagsHelp}`;

await runActor('aggregator', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' }, strategy: { type: 'string' }, 'ps-shard': { type: 'string' }, 'ps-shards': { type: 'string' }, 'data-shards': { type: 'string' },
      model: { type: 'string' }, dim: { type: 'string' }, 'init-std': { type: 'string' }, optimizer: { type: 'string' }, lr: { type: 'string' }, l2: { type: 'string' },
      momentum: { type: 'string' }, staleness: { type: 'string' }, seed: { type: 'string' }, 'world-size': { type: 'string' }, help: { type: 'boolean' }, ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const job = v.job ?? 'local';
  const shard = intFlag('ps-shard', v['ps-shard'], 0);
  const psShards = intFlag('ps-shards', v['ps-shards'], 1, 1);
  if (shard >= psShards) throw new FlagError(`--ps-shard ${shard} must be below --ps-shards ${psShards}`);
  const optimizerName = v.optimizer ?? 'adam';
  if (!['adam', 'adagrad', 'sgd'].includes(optimizerName)) throw new FlagError(`--optimizer must be adam, adagrad or sgd, got '${optimizerName}'`);
  const staleness = v.staleness ?? 'none';
  try {
    parseStaleness(staleness);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const seed = intFlag('seed', v.seed, 42);
  const log = actorLog(`aggregator ${shard}/${psShards}`);
  const conn = await connectActor(v, { name: `aggregator-${shard}`, startLocalServer: true, log });
  const data = new DataClient(conn.nc, { job, shards: intFlag('data-shards', v['data-shards'], 1, 1) });
  log(`job ${job}: waiting for a data shard (start one with \`npx nx serve data-shard -- --job ${job}\`) …`);
  const info = await data.waitForInfo(600_000, (n) => {
    if (n % 20 === 0) log(`still waiting for a data shard of job ${job} …`);
  });
  const config: JobConfig = {
    job,
    strategy,
    worldSize: intFlag('world-size', v['world-size'], 1, 1),
    model: v.model ?? 'mf',
    hyper: { numUsers: info.numUsers, numItems: info.numItems, globalMean: info.globalMean, dim: intFlag('dim', v.dim, 16, 1), initStd: numberFlag('init-std', v['init-std'], 0.1, { min: 0 }) },
    optimizer: { name: optimizerName as JobConfig['optimizer']['name'], lr: numberFlag('lr', v.lr, 0.01, { min: 0 }), l2: numberFlag('l2', v.l2, 2e-4, { min: 0 }), ...(v.momentum !== undefined ? { momentum: numberFlag('momentum', v.momentum, 0, { min: 0 }) } : {}) },
    psShards,
    staleness,
    seed,
  };
  const model = createModel(config.model, config.hyper);
  const ps = new ParameterShard({ model, shard, of: psShards, seed, optimizer: config.optimizer, staleness: parseStaleness(staleness) });
  const subs = servePsShard(conn.nc, job, ps);
  // Every shard answers config requests (queue group): they all hold the same configuration.
  subs.push(serveJobConfig(conn.nc, config));
  if (shard === 0) {
    // Mirrored: rank 0 checkpoints here; the evaluator and the launcher read the latest.
    let latest: Uint8Array | undefined;
    subs.push(
      serveLarge(conn.nc, subjects.ctl(job, 'checkpoint'), (payload) => {
        const snap = snapshotCodec.decode(payload);
        latest = payload;
        log(`mirrored snapshot of step ${snap.step} stored`);
        return new Uint8Array(0);
      }),
      serveLarge(conn.nc, subjects.ctl(job, 'snapshot'), () => {
        if (latest === undefined) throw new HandlerError('NO_SNAPSHOT', 'no mirrored snapshot yet');
        return latest;
      }),
    );
  }
  log(`job ${job}: config owner${shard === 0 ? ' and mirrored snapshot store' : ''}, parameter shard ${shard}/${psShards} of ${config.model} (${info.numUsers} users × ${info.numItems} items) ready`);
  exitOnSignals(conn, () => subs.forEach((s) => s.unsubscribe()));
  let last = 0; // quiet until the first push
  setInterval(() => {
    const s = ps.stats;
    if (s.pushes !== last) log(`version ${s.version}: ${s.pushes} pushes applied, ${s.dropped} dropped`);
    last = s.pushes;
  }, 5_000).unref();
});
