// A parameter-server trainer: pull → compute → push, no barrier. Times each phase so the
// loss reports (and the benchmark) can say where a step's time goes.
import type { Engine } from '@actorflow/engine';
import type { TrainableModel } from '@actorflow/models';
import type { PsClient } from './ps-client.ts';
import { assertFiniteStep } from './guards.ts';
import { prefetch } from './prefetch.ts';

export interface TrainerStep {
  readonly step: number;
  readonly epoch: number;
  readonly loss: number;
  readonly examples: number;
  /** Every shard applied the push (false: dropped by staleness, or by a shard restarted from an older checkpoint). */
  readonly accepted: boolean;
  readonly timing: { readonly computeMs: number; readonly serdeMs: number; readonly waitMs: number };
}

export async function runPsTrainer(o: {
  readonly engine: Engine;
  readonly model: TrainableModel<unknown>;
  /** Seeds the model's per-example randomness (dropout, negatives): the job's seed. */
  readonly seed?: number;
  readonly client: PsClient;
  readonly rank: number;
  readonly data: AsyncIterable<{ readonly epoch: number; readonly batch: unknown }>;
  readonly onStep?: (s: TrainerStep) => void;
}): Promise<{ steps: number; examples: number; droppedPushes: number }> {
  const dense = o.model.denseSpecs().map((d) => d.name);
  const droppedBefore = o.client.counters.droppedPushes.reduce((a, b) => a + b, 0);
  let step = 0;
  let examples = 0;
  // The next batch is requested while this step computes (src/prefetch.ts).
  for await (const { epoch, batch } of prefetch(o.data)) {
    const t0 = performance.now();
    const ctx = { seed: o.seed ?? 0, epoch, step };
    const params = await o.client.pull(o.model.rowsFor(batch, ctx), dense);
    const t1 = performance.now();
    const result = o.model.computeGradients(o.engine.tf, batch, params, ctx);
    assertFiniteStep(result, { step, rank: o.rank });
    const t2 = performance.now();
    const replies = await o.client.push(step, result, o.rank);
    const t3 = performance.now();
    step++;
    examples += result.count;
    // Pull/push time splits into encoding/decoding (measured in the client) and waiting on the network and shards.
    const serdeMs = o.client.takeSerdeMs();
    o.onStep?.({ step, epoch, loss: result.loss, examples: result.count, accepted: replies.every((r) => r.accepted), timing: { computeMs: t2 - t1, serdeMs, waitMs: t1 - t0 + (t3 - t2) - serdeMs } });
  }
  // Pushes a shard refused after restarting from an older checkpoint (BAD_VERSION): work lost to the fault.
  const droppedPushes = o.client.counters.droppedPushes.reduce((a, b) => a + b, 0) - droppedBefore;
  return { steps: step, examples, droppedPushes };
}
