// Non-finite guards. A NaN or ±Infinity in a loss or a gradient is a divergence: pushing or
// all-reducing it would spread it to every parameter within a few steps, so the trainer stops
// with a DivergenceError that names the step, the rank and where the bad value is.
import type { StepResult } from '@actorflow/models';
import { firstNonFiniteIndex } from '@actorflow/protocol';

/** Training diverged: a loss or gradient stopped being a finite number. */
export class DivergenceError extends Error {
  constructor(
    readonly step: number,
    readonly rank: number,
    /** 'loss', or the table / dense tensor whose gradient is not finite. */
    readonly where: string,
    readonly value: number,
  ) {
    super(
      `training diverged at step ${step} on rank ${rank}: ${where === 'loss' ? 'the loss' : `the gradient of '${where}'`} is ${value} — ` +
        "this step's gradients were not sent (no parameter changed); lower the learning rate (--lr), try another optimizer (--optimizer adam), or check the data for extreme values",
    );
    this.name = 'DivergenceError';
  }
}

/** The first non-finite value of `a` (with its index), or undefined when all are finite. */
export function firstNonFinite(a: ArrayLike<number>): { index: number; value: number } | undefined {
  if (a instanceof Float32Array) {
    // Every gradient and parameter is float32: the protocol's branch-free scan.
    const i = firstNonFiniteIndex(a);
    return i < 0 ? undefined : { index: i, value: a[i] };
  }
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return { index: i, value: a[i] };
  return undefined;
}

/** Throws DivergenceError when the step's loss or any of its gradients is not finite. */
export function assertFiniteStep(r: Pick<StepResult, 'loss' | 'sparse' | 'dense'>, at: { readonly step: number; readonly rank: number }): void {
  if (!Number.isFinite(r.loss)) throw new DivergenceError(at.step, at.rank, 'loss', r.loss);
  for (const [name, g] of Object.entries(r.sparse)) {
    const bad = firstNonFinite(g.values);
    if (bad !== undefined) throw new DivergenceError(at.step, at.rank, name, bad.value);
  }
  for (const [name, v] of Object.entries(r.dense)) {
    const bad = firstNonFinite(v);
    if (bad !== undefined) throw new DivergenceError(at.step, at.rank, name, bad.value);
  }
}

/** The first table or dense tensor of a parameter store holding a non-finite value (for refusing to save it). */
export function nonFiniteParam(p: {
  readonly tables: Readonly<Record<string, { readonly data: Float32Array }>>;
  readonly dense: Readonly<Record<string, Float32Array>>;
}): { name: string; index: number; value: number } | undefined {
  for (const [name, t] of Object.entries(p.tables)) {
    const bad = firstNonFinite(t.data);
    if (bad !== undefined) return { name, ...bad };
  }
  for (const [name, v] of Object.entries(p.dense)) {
    const bad = firstNonFinite(v);
    if (bad !== undefined) return { name, ...bad };
  }
  return undefined;
}
