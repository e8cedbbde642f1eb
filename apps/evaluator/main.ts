// npx nx serve evaluator [-- --job local --every 200 --out DIR]
// Scores parameter snapshots on the test split: every N trainer steps (watching train.loss) and
// whenever asked on <job>.eval.now; publishes train.eval and appends to <out>/eval.jsonl.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RemoteError, actorLog, busFlagOptions, busFlagsHelp, connectActor, exitOnSignals, intFlag, requestLarge, runActor, serveLarge } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient, fetchJobConfig } from '@actorflow/feed';
import type { RatingsBatch } from '@actorflow/data';
import { createModel, type TrainableModel } from '@actorflow/models';
import { evalReportCodec, lossReportCodec, monitoringHeaders, snapshotCodec, subjects, type EvalReport, type Snapshot } from '@actorflow/protocol';
import { PsClient, evaluate, mergeSnapshots } from '@actorflow/strategies';
import { headers as natsHeaders } from '@nats-io/nats-core';

const usage = `Usage: npx nx serve evaluator -- [options]
  --job ID         job id (default local)
  --every N        evaluate every N trainer steps (default 200; 0 = only when asked)
  --out DIR        append every result to DIR/eval.jsonl
  --backend NAME   TF.js backend (default: best available)
  --strategy, --ps-shards, --data-shards   accepted for launcher symmetry
${busFlagsHelp}`;

await runActor('evaluator', usage, async () => {
  const { values: v } = parseArgs({
    options: { job: { type: 'string' }, every: { type: 'string' }, out: { type: 'string' }, backend: { type: 'string' }, strategy: { type: 'string' }, 'ps-shards': { type: 'string' }, 'data-shards': { type: 'string' }, help: { type: 'boolean' }, ...busFlagOptions },
  });
  if (v.help === true) {
    console.log(usage);
    return;
  }
  const job = v.job ?? 'local';
  const every = intFlag('every', v.every, 200);
  const log = actorLog('evaluator');
  const conn = await connectActor(v, { name: 'evaluator', log });
  const config = await fetchJobConfig(conn.nc, job, 600_000);
  const data = new DataClient(conn.nc, { job, shards: 1 });
  const test = await data.testSet();
  const engine = await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log });
  const model = createModel(config.model, config.hyper) as TrainableModel<RatingsBatch>;
  const ps = new PsClient(conn.nc, { job, shards: config.psShards });
  if (v.out !== undefined) mkdirSync(v.out, { recursive: true });
  const hdrs = natsHeaders();
  for (const [k, val] of Object.entries(monitoringHeaders(job))) hdrs.set(k, val);
  // Mirrored: the replica rank 0 last checkpointed to the aggregator; ps: every parameter shard's rows.
  const snapshots = async (): Promise<Snapshot[]> => {
    try {
      return [snapshotCodec.decode(await requestLarge(conn.nc, subjects.ctl(job, 'snapshot'), new Uint8Array(0), { timeoutMs: 60_000 }))];
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
        const metrics = evaluate(engine, model, params, test);
        const report: EvalReport = { job, step, metrics, ts: Date.now(), ...(final ? { final } : {}) };
        conn.nc.publish(subjects.eval, evalReportCodec.encode(report), { headers: hdrs });
        if (v.out !== undefined) appendFileSync(join(v.out, 'eval.jsonl'), `${JSON.stringify(report)}\n`);
        log(`step ${step}: rmse ${metrics.rmse.toFixed(4)}, mae ${metrics.mae.toFixed(4)} on ${test.length} test ratings`);
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
  log(`job ${job}: evaluating ${config.model} on ${test.length} test ratings${every > 0 ? ` every ${every} steps` : ''}`);
  exitOnSignals(conn, () => subs.forEach((s) => s.unsubscribe()));
});
