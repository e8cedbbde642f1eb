// Per-example L2 (λ per observed rating), as Surprise's SVD/SVD++ and the MF literature define it:
// the loss is (1/n) Σ_examples [ (r − r̂)² + λ (‖p_u‖² + ‖q_i‖² + b_u² + b_i²) ], so a row touched by
// c examples of the batch gets 2λ·c/n · w on its gradient. Surprise's SGD step (err·q − reg·p per
// rating, from ½err² + ½reg‖p‖²) is the same ratio of error to penalty, so its reg_all maps to λ.
// The optimizer's `l2` (weight decay once per touched row and batch, whatever the row's count) is
// the other option; set one of them.
import { sortedIndexOf, type SparseGradient } from '@actorflow/embeddings';
import { ModelError } from './model.ts';

/**
 * Adds per-example L2 to `grad` (rows sorted, a subset of `gathered.rows`) in place for the ids the
 * batch's examples use, and returns the penalty's share of the batch loss (λ/n Σ_examples ‖w‖²).
 */
export function addPerExampleL2(
  grad: SparseGradient,
  ids: Int32Array,
  gathered: { readonly rows: Int32Array; readonly values: Float32Array },
  dim: number,
  lambda: number,
  n: number,
  what: string,
): number {
  if (lambda === 0) return 0;
  const counts = new Float64Array(grad.rows.length);
  for (let e = 0; e < ids.length; e++) {
    const at = sortedIndexOf(grad.rows, ids[e]);
    if (at < 0) throw new ModelError(`${what}: row ${ids[e]} of the batch has no gradient row`);
    counts[at]++;
  }
  let penalty = 0;
  const g = grad.values;
  const w = gathered.values;
  for (let r = 0; r < grad.rows.length; r++) {
    // The kernels' gradients usually come aligned with the gathered rows (every gathered row touched).
    const at = grad.rows === gathered.rows ? r : sortedIndexOf(gathered.rows, grad.rows[r]);
    if (at < 0) throw new ModelError(`${what}: row ${grad.rows[r]} was not gathered for this batch`);
    const scale = (2 * lambda * counts[r]) / n;
    let sq = 0;
    for (let k = 0; k < dim; k++) {
      const v = w[at * dim + k];
      g[r * dim + k] += scale * v;
      sq += v * v;
    }
    penalty += counts[r] * sq;
  }
  return (lambda * penalty) / n;
}

/** The `reg` hyper-parameter (per-example λ): a finite number ≥ 0. */
export function regOf(model: string, v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw new ModelError(`${model}: hyper-parameter 'reg' (per-example L2 λ) must be a number >= 0, got ${String(v)}`);
  return v;
}
