// npx nx serve evaluator [-- --job local --every 200 --out DIR]
// Scores parameter snapshots on the test split: every N trainer steps (watching train.loss) and
// whenever asked on <job>.eval.now; publishes train.eval and appends to <out>/eval.jsonl and
// <out>/eval.csv. What it scores depends on the model's task: RMSE/MAE for ratings; NDCG, Recall,
// Precision, MAP, HR@K and MRR (full ranking, training items excluded) for ranking models, with
// the popularity baseline alongside (popularity.*); accuracy for classifiers.
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RemoteError, actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, intFlag, requestWithRetry, registerActorService, runActor, serveLarge } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient, fetchJobConfig } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { evalReportCodec, lossReportCodec, monitoringHeaders, snapshotCodec, subjects, type EvalReport, type Snapshot } from '@actorflow/protocol';
import { PsClient, evaluateModel, headlineMetric, mergeSnapshots, popularityRanking } from '@actorflow/strategies';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { KNN_MODEL, serveKnnEvaluator } from '@actorflow/knn';

const usage = `Usage: npx nx serve evaluator -- [options]
  --job ID         job id (default local)
  --every N        evaluate every N trainer steps (default 200; 0 = only when asked)
  --out DIR        append every result to DIR/eval.jsonl and DIR/eval.csv
  --backend NAME   TF.js backend (default: best available)
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
      help: { type: 'boolean' },
      ...busFlagOptions,
    },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const job = v.job ?? 'local';
  const every = intFlag('every', v.every, 200);
  const log = actorLog('evaluator');
  const conn = await connectActor(v, { name: 'evaluator', log });
  await registerActorService(conn.nc, { role: 'evaluator', job });
  const config = await fetchJobConfig(conn.nc, job, 600_000);
  const data = new DataClient(conn.nc, { job, shards: 1 });
  if (config.model === KNN_MODEL) {
    // kNN has no parameter snapshots: score the merged neighbour lists once they are complete (libs/knn).
    if (v.out !== undefined) mkdirSync(v.out, { recursive: true });
    const knn = serveKnnEvaluator(conn.nc, { config, data, log, onReport: (r) => (v.out !== undefined ? appendHistory(v.out, r) : undefined) });
    exitOnSignals(conn, () => knn.stop());
    return;
  }
  const model = createModel(config.model, config.hyper);
  const numItems = typeof config.hyper.numItems === 'number' ? config.hyper.numItems : 0;
  log(`loading held-out data for ${config.model} (${model.task ?? 'rating'} task) …`);
  const heldOut = await data.heldOut(model, numItems);
  const testSize = heldOut.images?.label.length ?? heldOut.testRows?.user.length ?? heldOut.ratings?.length ?? 0;
  const testWhat = heldOut.images !== undefined ? 'test images' : heldOut.testRows !== undefined ? 'test users' : 'test ratings';
  const baseline = heldOut.testRows !== undefined ? Object.fromEntries(Object.entries(popularityRanking(heldOut)).map(([k, x]) => [`popularity.${k}`, x])) : {};
  const headline = headlineMetric(model);
  const engine = await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log });
  const ps = new PsClient(conn.nc, { job, shards: config.psShards });
  if (v.out !== undefined) mkdirSync(v.out, { recursive: true });
  const hdrs = natsHeaders();
  for (const [k, val] of Object.entries(monitoringHeaders(job))) hdrs.set(k, val);
  // Mirrored: the replica rank 0 last checkpointed to the aggregator; ps: every parameter shard's rows.
  const snapshots = async (): Promise<Snapshot[]> => {
    try {
      return [snapshotCodec.decode(await requestWithRetry(conn.nc, subjects.ctl(job, 'snapshot'), new Uint8Array(0), { attemptTimeoutMs: 60_000 }))];
    } catch (err) {
      if (!(err instanceof RemoteError && err.code === 'NO_SNAPSHOT') || config.strategy === 'mirrored') throw err;
      return ps.snapshot();
    }
  };
  let latestStep = 0;
  let running: Promise<EvalReport> | undefined;
  const runEval = (final: boolean): Promise<EvalReport> => {
    running ??= (async () => {
      try {
        const step = latestStep;
        const params = mergeSnapshots(model, config.seed, await snapshots());
        const t0 = performance.now();
        let lastNote = performance.now();
        const onProgress = (done: number, total: number): void => {
          if (performance.now() - lastNote < 5000) return;
          lastNote = performance.now();
          log(`step ${step}: evaluating … ${done}/${total} ${testWhat} (${Math.round((100 * done) / total)} %)`);
        };
        const metrics = { ...evaluateModel(engine, model, params, heldOut, { onProgress }), ...baseline };
        const report: EvalReport = { job, step, metrics, ts: Date.now(), ...(final ? { final } : {}) };
        conn.nc.publish(subjects.eval, evalReportCodec.encode(report), { headers: hdrs });
        if (v.out !== undefined) appendHistory(v.out, report);
        const main = metrics[headline.name];
        const pop = metrics[`popularity.${headline.name}`];
        log(
          `step ${step}: ${headline.name} ${main?.toFixed(4)}${pop !== undefined ? ` (popularity ${pop.toFixed(4)})` : ''}${metrics.mae !== undefined ? `, mae ${metrics.mae.toFixed(4)}` : ''} on ${testSize} ${testWhat} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
        return report;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  let nextAt = every;
  const subs = [
    conn.nc.subscribe(subjects.loss, {
      callback: (_e, m) => {
        try {
          const r = lossReportCodec.decode(m.data);
          if (r.job !== job) return;
          // ps: total steps over all trainers.
          latestStep = Math.max(latestStep, r.step);
          if (every > 0 && latestStep >= nextAt) {
            nextAt = latestStep + every;
            void runEval(false).catch((err: Error) => log(`evaluation failed: ${err.message}`));
          }
        } catch {
          /* not a loss report: ignore */
        }
      },
    }),
    serveLarge(conn.nc, subjects.evalNow(job), async (payload) => {
      const final = payload.length > 0 && (JSON.parse(new TextDecoder().decode(payload)) as { final?: boolean }).final === true;
      return evalReportCodec.encode(await runEval(final));
    }),
  ];
  log(`job ${job}: evaluating ${config.model} on ${testSize} ${testWhat}${every > 0 ? ` every ${every} steps` : ''}`);
  exitOnSignals(conn, () => subs.forEach((s) => s.unsubscribe()));
});

/** Appends a result to eval.jsonl and eval.csv (header written once, from the first result's metrics). */
function appendHistory(dir: string, report: EvalReport): void {
  appendFileSync(join(dir, 'eval.jsonl'), `${JSON.stringify(report)}\n`);
  const csv = join(dir, 'eval.csv');
  const keys = Object.keys(report.metrics).sort();
  if (!existsSync(csv)) appendFileSync(csv, `ts,step,final,${keys.join(',')}\n`);
  appendFileSync(csv, `${report.ts},${report.step},${report.final === true},${keys.map((k) => report.metrics[k]).join(',')}\n`);
}
