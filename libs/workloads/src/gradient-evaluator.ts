// The evaluator of gradient models: scores parameter snapshots on the test split every N trainer
// steps (watching train.loss) and whenever asked on <job>.eval.now; publishes train.eval and
// appends to <out>/eval.jsonl and eval.csv. What it scores follows the model's task: RMSE/MAE for
// ratings; NDCG, Recall, Precision, MAP, HR@K and MRR for ranking models, with the popularity
// baseline alongside (popularity.*); accuracy for classifiers.
import { serveLarge } from '@actorflow/bus';
import { selectBackend } from '@actorflow/engine';
import { DataClient } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { evalNowRequestCodec, evalReportCodec, lossReportCodec, monitoringHeaders, subjects, type EvalReport } from '@actorflow/protocol';
import { evaluateModel, headlineMetric, mergeSnapshots, popularityRanking } from '@actorflow/strategies';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { appendEvalHistory, jobSnapshots } from './save.ts';
import type { EvaluatorOptions, ServedEvaluator } from './workload.ts';

export async function serveGradientEvaluator(o: EvaluatorOptions): Promise<ServedEvaluator> {
  const { nc, config, job, every, log } = o;
  const data = new DataClient(nc, { job, shards: 1 });
  const model = createModel(config.model, config.hyper);
  const numItems = typeof config.hyper.numItems === 'number' ? config.hyper.numItems : 0;
  log(`loading held-out data for ${config.model} (${model.task ?? 'rating'} task) …`);
  const heldOut = await data.heldOut(model, numItems);
  const testSize = heldOut.images?.label.length ?? heldOut.testRows?.user.length ?? heldOut.ratings?.length ?? 0;
  const testWhat = heldOut.images !== undefined ? 'test images' : heldOut.testRows !== undefined ? 'test users' : 'test ratings';
  const baseline = heldOut.testRows !== undefined ? Object.fromEntries(Object.entries(popularityRanking(heldOut)).map(([k, x]) => [`popularity.${k}`, x])) : {};
  const headline = headlineMetric(model);
  const engine = await selectBackend({ ...(o.backend !== undefined ? { backend: o.backend } : {}), log });
  const hdrs = natsHeaders();
  for (const [k, val] of Object.entries(monitoringHeaders(job))) hdrs.set(k, val);
  let latestStep = 0;
  let running: Promise<EvalReport> | undefined;
  const runEval = (final: boolean): Promise<EvalReport> => {
    running ??= (async () => {
      try {
        const step = latestStep;
        const params = mergeSnapshots(model, config.seed, await jobSnapshots(nc, config));
        const t0 = performance.now();
        let lastNote = performance.now();
        const onProgress = (done: number, total: number): void => {
          if (performance.now() - lastNote < 5000) return;
          lastNote = performance.now();
          log(`step ${step}: evaluating … ${done}/${total} ${testWhat} (${Math.round((100 * done) / total)} %)`);
        };
        const metrics = { ...evaluateModel(engine, model, params, heldOut, { onProgress }), ...baseline };
        const report: EvalReport = { job, step, metrics, ts: Date.now(), ...(final ? { final } : {}) };
        nc.publish(subjects.eval, evalReportCodec.encode(report), { headers: hdrs });
        if (o.out !== undefined) appendEvalHistory(o.out, report);
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
    nc.subscribe(subjects.loss, {
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
    serveLarge(nc, subjects.evalNow(job), async (payload) => {
      const final = evalNowRequestCodec.decode(payload).final === true;
      // A final evaluation waits for one already running, then scores the newest parameters.
      if (final && running !== undefined) await running.catch(() => undefined);
      return evalReportCodec.encode(await runEval(final));
    }),
  ];
  log(`job ${job}: evaluating ${config.model} on ${testSize} ${testWhat}${every > 0 ? ` every ${every} steps` : ''}`);
  return { stop: () => subs.forEach((s) => s.unsubscribe()) };
}
