// Row-wise optimizers on typed arrays. Only the rows in a batch are touched (lazy): a table row
// that a batch does not use keeps its value and its optimizer state. Dense tensors use the same
// code (a dense tensor is one table whose every row is touched), so every strategy — local, a
// parameter-server shard, each mirrored replica — applies bit-identical updates.
//
// L2 (weight decay on touched rows): grad ← grad + l2 · w, for the touched rows only, before the
// optimizer's rule. (PyTorch's dense weight_decay would decay every row every step; that is a
// dense-Adam option for later, not what a sparse optimizer does.)
import { EmbeddingError, type EmbeddingTable } from './table.ts';

export type OptimizerName = 'sgd' | 'adagrad' | 'adam';

export interface OptimizerConfig {
  readonly name: OptimizerName;
  readonly lr: number;
  readonly l2?: number;
  /** SGD momentum (0 = plain SGD). */
  readonly momentum?: number;
  /** Adagrad initial accumulator (default 0.1, as in TF). */
  readonly initialAccumulator?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

/** Optimizer state of one parameter (table or dense tensor), row-major like the parameter. */
interface Slot {
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Per-row update counts (lazy Adam bias correction). */
  readonly steps: Int32Array;
}

export class RowOptimizer {
  readonly config: Required<OptimizerConfig>;
  readonly #slots = new Map<string, Slot>();

  constructor(config: OptimizerConfig) {
    if (!['sgd', 'adagrad', 'adam'].includes(config.name)) throw new EmbeddingError(`unknown optimizer '${config.name}'; use sgd, adagrad or adam`);
    if (!(config.lr > 0)) throw new EmbeddingError(`learning rate must be > 0, got ${config.lr}`);
    this.config = {
      l2: 0,
      momentum: 0,
      initialAccumulator: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: config.name === 'adagrad' ? 1e-10 : 1e-8,
      ...config,
    };
  }

  #slot(name: string, size: number, rows: number): Slot {
    let s = this.#slots.get(name);
    if (s === undefined) {
      const v = new Float32Array(size);
      if (this.config.name === 'adagrad') v.fill(this.config.initialAccumulator);
      s = { m: new Float32Array(size), v, steps: new Int32Array(rows) };
      this.#slots.set(name, s);
    }
    return s;
  }

  /**
   * Applies a (deduplicated) sparse gradient to the given rows of a table. `lrScale` multiplies
   * the learning rate (staleness-aware parameter servers use it).
   */
  applyRows(table: EmbeddingTable, rows: Int32Array, grads: Float32Array, lrScale = 1): void {
    const dim = table.dim;
    if (grads.length !== rows.length * dim) throw new EmbeddingError(`table ${table.name}: ${grads.length} gradient values for ${rows.length} rows × dim ${dim}`);
    const slot = this.#slot(table.name, table.data.length, table.rows);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r < 0 || r >= table.rows) throw new EmbeddingError(`table ${table.name}: row ${r} is out of range 0…${table.rows - 1}`);
      this.#update(table.data, slot, r, r * dim, grads, i * dim, dim, lrScale);
    }
  }

  /** Applies a dense gradient to a dense parameter (one "row" covering the whole tensor). */
  applyDense(name: string, param: Float32Array, grad: Float32Array, lrScale = 1): void {
    if (grad.length !== param.length) throw new EmbeddingError(`dense ${name}: gradient has ${grad.length} values, parameter ${param.length}`);
    const slot = this.#slot(`dense:${name}`, param.length, 1);
    this.#update(param, slot, 0, 0, grad, 0, param.length, lrScale);
  }

  #update(w: Float32Array, s: Slot, row: number, off: number, g: Float32Array, goff: number, n: number, lrScale: number): void {
    const { name, l2, momentum, beta1, beta2, epsilon } = this.config;
    const lr = this.config.lr * lrScale;
    if (name === 'sgd') {
      for (let k = 0; k < n; k++) {
        const grad = g[goff + k] + l2 * w[off + k];
        if (momentum > 0) {
          s.m[off + k] = momentum * s.m[off + k] + grad;
          w[off + k] -= lr * s.m[off + k];
        } else w[off + k] -= lr * grad;
      }
    } else if (name === 'adagrad') {
      for (let k = 0; k < n; k++) {
        const grad = g[goff + k] + l2 * w[off + k];
        s.v[off + k] += grad * grad;
        w[off + k] -= (lr * grad) / (Math.sqrt(s.v[off + k]) + epsilon);
      }
    } else {
      const t = ++s.steps[row];
      const c1 = 1 - Math.pow(beta1, t);
      const c2 = 1 - Math.pow(beta2, t);
      for (let k = 0; k < n; k++) {
        const grad = g[goff + k] + l2 * w[off + k];
        s.m[off + k] = beta1 * s.m[off + k] + (1 - beta1) * grad;
        s.v[off + k] = beta2 * s.v[off + k] + (1 - beta2) * grad * grad;
        w[off + k] -= (lr * (s.m[off + k] / c1)) / (Math.sqrt(s.v[off + k] / c2) + epsilon);
      }
    }
  }

  /** Optimizer state, for checkpoints. */
  state(): Record<string, { m: Float32Array; v: Float32Array; steps: Int32Array }> {
    return Object.fromEntries([...this.#slots.entries()].map(([k, s]) => [k, { m: s.m, v: s.v, steps: s.steps }]));
  }

  loadState(state: Record<string, { m: Float32Array; v: Float32Array; steps: Int32Array }>): void {
    this.#slots.clear();
    for (const [k, s] of Object.entries(state)) this.#slots.set(k, { m: s.m, v: s.v, steps: s.steps });
  }
}
