// npx nx serve data-shard -- --shard 0 --of 2 --dataset synthetic:small [--job local] …
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, intFlag, registerActorService, runActor } from '@actorflow/bus';
import { loadJobDataset, parseDataOptions, serveDataShard, type DataShardState } from '@actorflow/feed';
import { discoverJob, exitActor, onJobEnd } from '@actorflow/workloads';

const usage = `Usage: npx nx serve data-shard -- [options]
  --job ID            job id (default: the one running job, found through its aggregator)
  --shard I --of K    this process serves partition I of K (default 0 of 1)
  --dataset SPEC      synthetic:tiny|small|medium|ml20m, a ratings file, mnist:bundled or mnist:DIR (default synthetic:small)
  --split SPEC        random:0.1 (default), user:10, loo, …
  --seed N            data, split and shuffling seed (default 42)
  --epochs N          epochs to serve (default 10)
  --batch-size B      batch size (default 1024)
  --rating-range LO,HI          every rating must lie in LO…HI
  --min-user-ratings N, --min-item-ratings N   k-core filter before the split
  --implicit-threshold T        ratings ≥ T become 1, the others are dropped
  --restore-state FILE          continue the shared-mode cursor saved in a checkpoint (data-<shard>.json)
  --keep-serving                by hand: keep serving after the job ends (by default this process exits then)
${busFlagsHelp}`;

await runActor('data-shard', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' },
      shard: { type: 'string' },
      of: { type: 'string' },
      dataset: { type: 'string' },
      split: { type: 'string' },
      seed: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      'rating-range': { type: 'string' },
      'min-user-ratings': { type: 'string' },
      'min-item-ratings': { type: 'string' },
      'implicit-threshold': { type: 'string' },
      validation: { type: 'string' }, // --validation F|file:PATH: carved from training (libs/feed parseDataOptions)
      'restore-state': { type: 'string' },
      'keep-serving': { type: 'boolean' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const shard = intFlag('shard', v.shard, 0);
  const of = intFlag('of', v.of, 1, 1);
  if (shard >= of) throw new FlagError(`--shard ${shard} must be below --of ${of}`);
  const seed = intFlag('seed', v.seed, 42);
  const epochs = intFlag('epochs', v.epochs, 10, 1);
  const batchSize = intFlag('batch-size', v['batch-size'], 1024, 1);
  const log = actorLog(`data-shard ${shard}/${of}`);
  let restore: DataShardState | undefined;
  if (v['restore-state'] !== undefined) {
    try {
      restore = JSON.parse(readFileSync(v['restore-state'], 'utf8')) as DataShardState; // validated by serveDataShard
    } catch (err) {
      throw new FlagError(`--restore-state ${v['restore-state']}: ${(err as Error).message}`);
    }
  }
  const dataset = await loadJobDataset({ source: v.dataset ?? 'synthetic:small', ...(v.split !== undefined ? { split: v.split } : {}), seed, ...parseDataOptions(v) }, log);
  const conn = await connectActor(v, { name: `data-shard-${shard}`, log });
  // No --job: join the one live job (its aggregator minted the id); a named --job joins that job.
  const job = v.job ?? (await discoverJob(conn.nc, { log }));
  await registerActorService(conn.nc, { role: 'data-shard', job, rank: `${shard}/${of}` });
  const service = serveDataShard(conn.nc, { job, shard, of, dataset, batchSize, epochs, seed, log, ...(restore !== undefined ? { restore } : {}) });
  if (restore !== undefined) log(`cursor restored from ${v['restore-state']}`);
  log(
    dataset.images !== undefined
      ? `job ${job}: serving partition ${shard}/${of} of ${dataset.images.train.n} training images, ${epochs} epoch(s)`
      : `job ${job}: serving partition ${shard}/${of} of ${dataset.train.length} training ratings (${dataset.numUsers} users, ${dataset.numItems} items; ${service.partition.length} rating rows here), ${epochs} epoch(s)`,
  );
  exitOnSignals(conn, () => service.stop());
  // By hand, the job's end (announced by the aggregator) ends this process too; a launcher stops it itself.
  onJobEnd(
    conn.nc,
    job,
    () => {
      log(`job ${job} has ended: exiting`);
      void exitActor(conn, () => service.stop());
    },
    { keepServing: v['keep-serving'] === true },
  );
  setInterval(() => {
    const s = service.stats();
    log(`served ${s.served} batches${s.done ? ' (all epochs served)' : `, epoch ${s.epoch + 1}/${epochs}`}`);
  }, 10_000).unref();
});
