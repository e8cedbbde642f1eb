// npx nx run trainer --strategy ps --rank 0        (contract: nx run trainer --strategy mirrored --rank 0)
// Fetches the job configuration from the aggregator, picks a TF.js backend, trains, and publishes
// every step's loss on train.loss (JSON, readable with `nats sub train.loss`).
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, FlagError, intFlag, registerActorService, runActor } from '@actorflow/bus';
import { DataClient, fetchJobConfig } from '@actorflow/feed';
import { discoverJob, plannedJobSteps, supervised, watchJobProgress, workloadFor } from '@actorflow/workloads';

const usage = `Usage: npx nx run trainer -- --strategy ps|mirrored --rank R [options]
  --job ID               job id (default: the one running job, found through its aggregator)
  --strategy ps|mirrored ps: asynchronous parameter server; mirrored: synchronous all-reduce (default ps)
  --rank R               this trainer's rank (default: $RANK, else 0 — the torchrun convention)
  --ranks R1,R2,…        mirrored: run several ranks in this process (interoperates with --rank elsewhere)
  --world-size N         mirrored: ranks in the group (default: $WORLD_SIZE, else the aggregator's --world-size)
                         ($LOCAL_RANK, when set, is shown in the log lines)
  --collective-timeout S mirrored: seconds a rank may stay silent before the step fails naming it (default 60)
  --snapshot-every K     mirrored: rank 0 sends its replica (with optimizer state) to the aggregator every K steps
                         (default 100, and at the end); restarted ranks resume from it
  --snapshot-seconds S   mirrored: … and at least every S seconds
  --generation G         mirrored: the group's incarnation (the launcher counts re-formations; default 0)
  --first-step N         ps: number this trainer's steps from N (a restarted trainer continues its count)
  --data-shards K        data shards (default: as the data shards report)
  --backend NAME         tensorflow|wasm|cpu (default: best available)
  --loss-every K         publish train.loss every K steps (default 1)
  --allreduce star|ring  mirrored: star (through rank 0, rank order) or ring (dense gradients between neighbours); --ps-shards: accepted
${busFlagsHelp}`;

await runActor('trainer', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' },
      strategy: { type: 'string' },
      rank: { type: 'string' },
      'world-size': { type: 'string' },
      'data-shards': { type: 'string' },
      'ps-shards': { type: 'string' },
      backend: { type: 'string' },
      'loss-every': { type: 'string' },
      allreduce: { type: 'string' },
      'collective-timeout': { type: 'string' },
      ranks: { type: 'string' },
      'snapshot-every': { type: 'string' },
      'snapshot-seconds': { type: 'string' },
      generation: { type: 'string' },
      'first-step': { type: 'string' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const strategy = v.strategy ?? 'ps';
  if (strategy !== 'ps' && strategy !== 'mirrored') throw new FlagError(`--strategy must be ps or mirrored, got '${strategy}'`);
  const allreduce = v.allreduce ?? 'star';
  if (allreduce !== 'star' && allreduce !== 'ring') throw new FlagError(`--allreduce must be star or ring, got '${allreduce}'`);
  // torchrun convention: RANK / WORLD_SIZE / LOCAL_RANK from the environment when the flags are absent.
  const envRank = process.env.RANK !== undefined && process.env.RANK !== '' ? process.env.RANK : undefined;
  const envWorld = process.env.WORLD_SIZE !== undefined && process.env.WORLD_SIZE !== '' ? process.env.WORLD_SIZE : undefined;
  const localRank = process.env.LOCAL_RANK !== undefined && process.env.LOCAL_RANK !== '' ? intFlag('local-rank (from $LOCAL_RANK)', process.env.LOCAL_RANK, 0) : undefined;
  const rank = v.rank !== undefined ? intFlag('rank', v.rank, 0) : intFlag('rank (from $RANK)', envRank, 0);
  const worldSizeFlag = v['world-size'] ?? envWorld;
  intFlag('loss-every', v['loss-every'], 1, 1); // checked before connecting; the workload reads it
  const ranks = v.ranks !== undefined ? v.ranks.split(',').map((r) => intFlag('ranks', r.trim(), 0)) : [rank];
  if (worldSizeFlag !== undefined) {
    // Checked before connecting: a rank outside the named world is a usage error, not a hang.
    const world = intFlag('world-size', worldSizeFlag, 1, 1);
    for (const r of ranks) if (r >= world) throw new FlagError(`rank ${r} is not below --world-size ${world}`);
  }
  const log = actorLog(`trainer ${v.ranks ?? rank}${localRank !== undefined ? ` (local ${localRank})` : ''}`);
  const conn = await connectActor(v, { name: `trainer-${rank}`, log });
  // No --job: join the one live job (its aggregator minted the id); a named --job joins that job.
  const job = v.job ?? (await discoverJob(conn.nc, { log }));
  let stepsDone = 0; // live stats of this process, for $SRV.STATS
  let examplesDone = 0;
  await registerActorService(conn.nc, { role: 'trainer', job, rank: v.ranks ?? rank, stats: () => ({ steps: stepsDone, examples: examplesDone }) });
  exitOnSignals(conn);
  const config = await fetchJobConfig(conn.nc, job, 600_000, (n) => {
    if (n === 1) log(`waiting for the aggregator of job ${job} …`);
  });
  const workload = workloadFor(config.model);
  const worldSize = intFlag('world-size', worldSizeFlag, config.worldSize, 1);
  // By hand (no launcher to show it): the job's step out of its planned total, examples/s and ETA,
  // from every rank's train.loss reports — the launcher's progress line, in the trainer's log.
  let watch: { stop(): void } | undefined;
  if (!supervised()) {
    const info = await new DataClient(conn.nc, { job, shards: 1 }).waitForInfo(600_000);
    const totalSteps = plannedJobSteps(workload, config, strategy, worldSize, info);
    log(
      `job ${job}: ${totalSteps !== undefined ? `${totalSteps} steps planned` : 'no step total known'} (${strategy}${strategy === 'mirrored' ? `, world size ${worldSize}` : ''}, ${info.epochs} epoch(s), batch ${info.batchSize})`,
    );
    watch = watchJobProgress(conn.nc, { job, strategy, totalSteps, log });
  }
  // What training is depends on the model: its workload trains (libs/workloads).
  await workload.runTrainer({
    nc: conn.nc,
    config,
    job,
    strategy,
    rank,
    ranks,
    worldSize,
    flags: v,
    log,
    onProgress: (steps, examples) => {
      stepsDone = steps;
      examplesDone = examples;
    },
  });
  await conn.nc.flush();
  watch?.stop();
  await conn.nc.drain();
  process.exit(0);
});
