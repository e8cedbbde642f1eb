// Finite-difference gradient checks shared by the model tests (not a test file itself).
import type { Test } from 'tap';
import type { GatheredParams, StepResult } from '../mod.ts';

/** Deterministic "random" values in ±scale. */
export function fill(n: number, seed: number, scale = 0.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.37 + seed * 2.1) * scale);
}

/**
 * Central differences of `lossAt` for every gathered table value and every dense value (or a
 * stride of them for big tensors), compared with the step's sparse/dense gradients. A gathered row
 * without a sparse gradient must have a zero numeric gradient.
 */
export function checkGradients(t: Test, p: GatheredParams, res: StepResult, lossAt: (q: GatheredParams) => number, opts: { eps?: number; tol?: number; maxPerTensor?: number } = {}): void {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 2e-3;
  const maxPer = opts.maxPerTensor ?? 200;
  let checked = 0;
  let worst = 0;
  let worstAt = '';
  const compare = (what: string, numeric: number, analytic: number): void => {
    checked++;
    const err = Math.abs(numeric - analytic) / Math.max(1, Math.abs(numeric));
    if (err > worst) {
      worst = err;
      worstAt = `${what}: numeric ${numeric.toFixed(5)} vs analytic ${analytic.toFixed(5)}`;
    }
  };
  const numericAt = (mutate: (q: GatheredParams, delta: number) => void): number => {
    const plus = structuredClone(p);
    mutate(plus, eps);
    const minus = structuredClone(p);
    mutate(minus, -eps);
    return (lossAt(plus) - lossAt(minus)) / (2 * eps);
  };
  for (const [name, tab] of Object.entries(p.tables)) {
    const dim = tab.values.length / Math.max(1, tab.rows.length);
    const g = res.sparse[name];
    const stride = Math.max(1, Math.floor(tab.values.length / maxPer));
    for (let k = 0; k < tab.values.length; k += stride) {
      const row = tab.rows[Math.floor(k / dim)];
      let analytic = 0;
      if (g !== undefined) {
        const gi = g.rows.indexOf(row);
        if (gi >= 0) analytic = g.values[gi * dim + (k % dim)];
      }
      compare(
        `${name}[row ${row}, ${k % dim}]`,
        numericAt((q, d) => ((q.tables[name].values as Float32Array)[k] += d)),
        analytic,
      );
    }
  }
  for (const [name, v] of Object.entries(p.dense)) {
    const g = res.dense[name];
    const stride = Math.max(1, Math.floor(v.length / maxPer));
    for (let k = 0; k < v.length; k += stride) {
      compare(
        `${name}[${k}]`,
        numericAt((q, d) => ((q.dense[name] as Float32Array)[k] += d)),
        g === undefined ? 0 : g[k],
      );
    }
  }
  t.ok(worst < tol, `${checked} partial derivatives match finite differences (worst relative error ${worst.toExponential(2)}${worstAt ? ` at ${worstAt}` : ''})`);
}
