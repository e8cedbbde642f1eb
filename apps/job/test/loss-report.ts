// A train.loss report for the progress tests: the fields a test names, the codec's required rest.
import type { LossReport } from '@actorflow/protocol';

export function lossReport(o: Partial<LossReport> & Pick<LossReport, 'job' | 'rank' | 'step'>): LossReport {
  return { epoch: 0, loss: 1, examples: 0, examplesPerSec: 0, strategy: 'ps', backend: 'wasm', ts: 0, ...o };
}
