// Test helpers: realistic loss/eval reports (deterministic) and publishing them as the actors do.
import { existsSync } from 'node:fs';
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { NatsConnection } from '@actorflow/bus';
import { evalReportCodec, lossReportCodec, monitoringHeaders, subjects, type EvalReport, type LossReport } from '@actorflow/protocol';

export interface DemoOptions {
  readonly ranks?: number;
  readonly steps?: number;
  readonly from?: number;
  readonly evalEvery?: number;
  readonly strategy?: string;
  readonly backend?: string;
  readonly stepsPerEpoch?: number;
}

/** Loss reports of `ranks` trainers (a noisy decaying curve per rank) and evals every `evalEvery` steps. */
export function demoReports(job: string, o: DemoOptions = {}): { loss: LossReport[]; evals: EvalReport[] } {
  const ranks = o.ranks ?? 2;
  const steps = o.steps ?? 100;
  const from = o.from ?? 1;
  const evalEvery = o.evalEvery ?? 50;
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const loss: LossReport[] = [];
  const evals: EvalReport[] = [];
  for (let step = from; step < from + steps; step++) {
    for (let rank = 0; rank < ranks; rank++) {
      const value = 0.82 + 1.6 * Math.exp(-step / (60 + 15 * rank)) + (rand() - 0.5) * 0.08;
      loss.push({
        job,
        rank,
        step,
        epoch: Math.floor(step / (o.stepsPerEpoch ?? 100)),
        loss: value,
        examples: 512,
        examplesPerSec: 9000 + 800 * rank + rand() * 400,
        strategy: o.strategy ?? 'mirrored',
        backend: o.backend ?? 'wasm',
        ts: 1_700_000_000_000 + step * 50,
      });
    }
    if (step % evalEvery === 0) {
      const k = Math.exp(-step / 80);
      evals.push({ job, step, metrics: { rmse: 0.91 + 0.5 * k, mae: 0.72 + 0.4 * k, 'ndcg@10': 0.34 - 0.2 * k }, ts: 1_700_000_000_000 + step * 50 });
    }
  }
  return { loss, evals };
}

/** Publishes reports with the real codecs and the Job-Id header, in step order. */
export async function publishReports(nc: NatsConnection, r: { loss: readonly LossReport[]; evals: readonly EvalReport[] }): Promise<void> {
  const hdr = (job: string) => {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(monitoringHeaders(job))) h.set(k, v);
    return h;
  };
  let e = 0;
  for (const l of r.loss) {
    nc.publish(subjects.loss, lossReportCodec.encode(l), { headers: hdr(l.job) });
    while (e < r.evals.length && r.evals[e].step <= l.step) {
      nc.publish(subjects.eval, evalReportCodec.encode(r.evals[e]), { headers: hdr(r.evals[e].job) });
      e++;
    }
  }
  for (; e < r.evals.length; e++) nc.publish(subjects.eval, evalReportCodec.encode(r.evals[e]), { headers: hdr(r.evals[e].job) });
  await nc.flush();
}

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/** Fails with what to install when Debian's chromium is missing. */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the monitor page test needs Debian's chromium. Install it with ` +
        '`apt-get install -y chromium` (`npx playwright install` cannot download here), or set CHROMIUM_BIN to a Chromium binary.',
    );
  }
  return CHROMIUM;
}
