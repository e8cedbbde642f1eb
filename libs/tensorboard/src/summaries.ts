// Our monitoring messages as TensorBoard scalars: `train.loss` → loss/rank<r> and
// examples_per_sec/rank<r>; `train.eval` → eval/<metric>. Wall times are the reports' own `ts`.
import type { EvalReport, LossReport } from '@actorflow/protocol';
import type { ScalarWriter } from './writer.ts';

/** loss/rank<r> and examples_per_sec/rank<r> at the report's step (a diverged loss is logged as NaN). */
export function summarizeLoss(writer: ScalarWriter, r: LossReport): void {
  writer.scalars({ [`loss/rank${r.rank}`]: r.loss, [`examples_per_sec/rank${r.rank}`]: r.examplesPerSec }, r.step, r.ts / 1000);
}

/** eval/<metric> for every metric of the report, at its step. */
export function summarizeEval(writer: ScalarWriter, e: EvalReport): void {
  const values: Record<string, number> = {};
  for (const [k, v] of Object.entries(e.metrics)) values[`eval/${k}`] = v;
  writer.scalars(values, e.step, e.ts / 1000);
}
