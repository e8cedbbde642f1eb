// npx nx serve evaluator [-- --job local --every 200 --out DIR]
// Scores parameter snapshots on the test split: every N trainer steps (watching train.loss) and
// whenever asked on <job>.eval.now; publishes train.eval and appends to <out>/eval.jsonl and
// <out>/eval.csv. What it scores depends on the model's task: RMSE/MAE for ratings; NDCG, Recall,
// Precision, MAP, HR@K and MRR (full ranking, training items excluded) for ranking models, with
// the popularity baseline alongside (popularity.*); accuracy for classifiers.
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, intFlag, registerActorService, runActor } from '@actorflow/bus';
import { fetchJobConfig } from '@actorflow/feed';
import { discoverJob, exitActor, onJobEnd, workloadFor } from '@actorflow/workloads';

const usage = `Usage: npx nx serve evaluator -- [options]
  --job ID         job id (default: the one running job, found through its aggregator)
  --every N        evaluate every N trainer steps (default 200; 0 = only when asked)
  --out DIR        append every result to DIR/eval.jsonl and DIR/eval.csv
  --backend NAME   TF.js backend (default: best available)
  --keep-serving   by hand: keep serving after the job ends (by default this process exits then)
  --strategy, --ps-shards, --data-shards   accepted for launcher symmetry
${busFlagsHelp}`;

await runActor('evaluator', usage, async () => {
  const { values: v } = parseArgs({
    options: {
      job: { type: 'string' },
      every: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
      strategy: { type: 'string' },
      'ps-shards': { type: 'string' },
      'data-shards': { type: 'string' },
      'keep-serving': { type: 'boolean' },
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const every = intFlag('every', v.every, 200);
  const log = actorLog('evaluator');
  const conn = await connectActor(v, { name: 'evaluator', log });
  // No --job: join the one live job (its aggregator minted the id); a named --job joins that job.
  const job = v.job ?? (await discoverJob(conn.nc, { log }));
  await registerActorService(conn.nc, { role: 'evaluator', job });
  const config = await fetchJobConfig(conn.nc, job, 600_000);
  if (v.out !== undefined) mkdirSync(v.out, { recursive: true });
  // What scoring is depends on the model: its workload evaluates (libs/workloads).
  const served = await workloadFor(config.model).serveEvaluator({
    nc: conn.nc,
    config,
    job,
    every,
    log,
    ...(v.out !== undefined ? { out: v.out } : {}),
    ...(v.backend !== undefined ? { backend: v.backend } : {}),
  });
  exitOnSignals(conn, () => served.stop());
  // By hand, the job's end (announced by the aggregator after the final evaluation) ends this process too.
  onJobEnd(
    conn.nc,
    job,
    () => {
      log(`job ${job} has ended: exiting`);
      void exitActor(conn, () => served.stop());
    },
    { keepServing: v['keep-serving'] === true },
  );
});
