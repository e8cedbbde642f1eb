// Finite-difference gradient check shared by the model tests: perturbs every gathered table value
// and every dense value by ±eps, recomputes the model's own loss, and compares the central
// difference with the gradient the model returned (float32 everywhere, so tolerances are loose).
import type { Tf } from '@actorflow/engine';
import type { GatheredParams, StepContext, StepResult, TrainableModel } from '../mod.ts';

interface Tap {
  ok(value: unknown, message: string): unknown;
}

export function cloneParams(p: GatheredParams): GatheredParams {
  return {
    tables: Object.fromEntries(Object.entries(p.tables).map(([k, v]) => [k, { rows: v.rows.slice(), values: v.values.slice() }])),
    dense: Object.fromEntries(Object.entries(p.dense).map(([k, v]) => [k, v.slice()])),
  };
}

/** Analytic gradient of gathered row `row`, coordinate `k` (0 when the step did not touch the row). */
function analytic(res: StepResult, table: string, row: number, dim: number, k: number): number {
  const g = res.sparse[table];
  if (g === undefined) return 0;
  const at = g.rows.indexOf(row);
  return at < 0 ? 0 : g.values[at * dim + k];
}

export function checkGradients<B>(
  t: Tap,
  tf: Tf,
  model: TrainableModel<B>,
  batch: B,
  p: GatheredParams,
  opts: { ctx?: StepContext; eps?: number; tol?: number; skip?: (name: string) => boolean } = {},
): { checked: number; worst: number } {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 1e-2;
  const loss = (q: GatheredParams): number => model.computeGradients(tf, batch, q, opts.ctx).loss;
  const res = model.computeGradients(tf, batch, p, opts.ctx);
  let checked = 0;
  let worst = 0;
  let failures = 0;
  const compare = (what: string, a: number, perturb: (q: GatheredParams, delta: number) => void): void => {
    const plus = cloneParams(p);
    perturb(plus, eps);
    const minus = cloneParams(p);
    perturb(minus, -eps);
    const numeric = (loss(plus) - loss(minus)) / (2 * eps);
    const err = Math.abs(numeric - a) / Math.max(1, Math.abs(numeric), Math.abs(a));
    worst = Math.max(worst, err);
    checked++;
    if (err > tol) {
      failures++;
      t.ok(false, `${what}: finite difference ${numeric.toFixed(5)} vs gradient ${a.toFixed(5)}`);
    }
  };
  for (const [name, tbl] of Object.entries(p.tables)) {
    if (opts.skip?.(name) === true) continue;
    const dim = tbl.values.length / tbl.rows.length;
    for (let i = 0; i < tbl.rows.length; i++) {
      for (let k = 0; k < dim; k++) {
        compare(`${name}[${tbl.rows[i]}][${k}]`, analytic(res, name, tbl.rows[i], dim, k), (q, d) => {
          (q.tables[name].values as Float32Array)[i * dim + k] += d;
        });
      }
    }
  }
  for (const [name, v] of Object.entries(p.dense)) {
    if (opts.skip?.(name) === true) continue;
    for (let k = 0; k < v.length; k++) {
      const g = res.dense[name];
      compare(`${name}[${k}]`, g === undefined ? 0 : g[k], (q, d) => {
        (q.dense[name] as Float32Array)[k] += d;
      });
    }
  }
  t.ok(failures === 0 && checked > 0, `${checked} gradient values match finite differences (worst relative error ${worst.toExponential(2)})`);
  return { checked, worst };
}

/** Deterministic pseudo-random values in [-scale, scale). */
export function values(n: number, seed: number, scale = 0.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * scale);
}
