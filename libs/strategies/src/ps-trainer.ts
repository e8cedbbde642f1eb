// A parameter-server trainer: pull → compute → push, no barrier, pipelined (the next pull rides behind the push). Times each phase so the
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
}): Promise<{ steps: number; examples: number; droppedPushes: number; repulls: number }> {
  const dense = o.model.denseSpecs().map((d) => d.name);
  const droppedBefore = o.client.counters.droppedPushes.reduce((a, b) => a + b, 0);
  const repullsBefore = o.client.counters.repulls;
  const seed = o.seed ?? 0;
  let step = 0;
  let examples = 0;
  // The next batch is requested while this step computes (src/prefetch.ts).
  const batches = prefetch(o.data)[Symbol.asyncIterator]();
  try {
    let next = await batches.next();
    if (next.done === true) return { steps: 0, examples: 0, droppedPushes: 0, repulls: 0 };
    let t0 = performance.now();
    let pulled = o.client.pull(o.model.rowsFor(next.value.batch, { seed, epoch: next.value.epoch, step }), dense);
    for (;;) {
      const { epoch, batch } = next.value;
      const ctx = { seed, epoch, step };
      const params = await pulled;
      const t1 = performance.now();
      const result = o.model.computeGradients(o.engine.tf, batch, params, ctx);
      assertFiniteStep(result, { step, rank: o.rank });
      const t2 = performance.now();
      const pushed = o.client.push(step, result, o.rank);
      pushed.catch(() => undefined);
      // Pipelined step: the next batch's pull goes out right behind this push, so the shard
      // answers it as soon as it applied the push, while this trainer waits for both replies
      // once instead of twice. pullAfter checks the pulled version includes this push (and
      // asks again if a shard served the pull first): the rows are exactly what a pull after
      // the push reply would read — one trainer still equals the single process bit for bit.
      next = await batches.next();
      if (next.done !== true) {
        const v = next.value;
        const required = pushed.then((rs) => rs.map((r) => (r.accepted ? r.version : 0)));
        pulled = o.client.pullAfter(o.model.rowsFor(v.batch, { seed, epoch: v.epoch, step: step + 1 }), dense, () => required);
        pulled.catch(() => undefined);
      }
      const replies = await pushed;
      const t4 = performance.now();
      step++;
      examples += result.count;
      // Pull/push time splits into encoding/decoding (measured in the client) and waiting on the network and shards.
      const serdeMs = o.client.takeSerdeMs();
      // Compute is the gradient step; the next batch's row list is prepared in the push's shadow (t2 → t4, wait).
      o.onStep?.({
        step,
        epoch,
        loss: result.loss,
        examples: result.count,
        accepted: replies.every((r) => r.accepted),
        timing: { computeMs: t2 - t1, serdeMs, waitMs: t1 - t0 + (t4 - t2) - serdeMs },
      });
      if (next.done === true) break;
      t0 = t4;
    }
  } finally {
    await batches.return?.(undefined);
  }
  // Pushes a shard refused after restarting from an older checkpoint (BAD_VERSION): work lost to the fault.
  const droppedPushes = o.client.counters.droppedPushes.reduce((a, b) => a + b, 0) - droppedBefore;
  // Pipelined pulls a shard served before this trainer's push (asked again, see PsClient.pullAfter).
  return { steps: step, examples, droppedPushes, repulls: o.client.counters.repulls - repullsBefore };
}
