// Row-wise optimizers on typed arrays. Only the rows in a batch are touched (lazy): a table row
// that a batch does not use keeps its value and its optimizer state. Dense tensors use the same
// code (a dense tensor is one table whose every row is touched), so every strategy — local, a
// parameter-server shard, each mirrored replica — applies bit-identical updates.
//
// L2 (weight decay on touched rows): grad ← grad + l2 · w, for the touched rows only, before the
// optimizer's rule. `dense: true` instead updates every row of a table on every step, as
// PyTorch's dense optimizers do (see OptimizerConfig.dense).
//
// Rules (g = gradient + l2·w):
//   sgd      m ← μ·m + g; w ← w − lr·m            (μ = momentum; μ = 0: w ← w − lr·g)        lr 0.01
//   adagrad  v ← v + g²; w ← w − lr·g / (√v + ε)  (v starts at 0.1, ε 1e-10, as TF)          lr 0.001
//   adam     PyTorch/TF Adam with bias correction (β1 0.9, β2 0.999, ε 1e-8); lazy: per-row
//            step counts, so a row's bias correction counts the steps that touched it          lr 0.001
//   rmsprop  TF/Keras: v ← ρ·v + (1−ρ)·g²; Δ = lr·g / √(v + ε); with momentum μ > 0,
//            m ← μ·m + Δ and w ← w − m, else w ← w − Δ (ρ 0.9, ε 1e-7, v starts at 0;
//            ε inside the root as in the TF kernel, Keras 3 and tf.train.rmsprop)              lr 0.001
// Default learning rates are Keras's.
import { EmbeddingError, type EmbeddingTable } from './table.ts';
import { arenaOf, type Arena } from './wasm/kernels.ts';

let useWasm = true;
/** Step counts up to this have their Adam bias corrections memoised (2 × 512 KiB at most). */
const MEMO_STEPS = 1 << 16;

/** Chooses lazy Adam's row loop: WebAssembly SIMD (default, where available) or JavaScript; bit-identical. */
export function setWasmOptimizer(on: boolean): void {
  useWasm = on;
}

export type OptimizerName = 'sgd' | 'adagrad' | 'adam' | 'rmsprop';

const DEFAULT_LR: Readonly<Record<OptimizerName, number>> = { sgd: 0.01, adagrad: 0.001, adam: 0.001, rmsprop: 0.001 };

export interface OptimizerConfig {
  readonly name: OptimizerName;
  /** Learning rate; defaults to Keras's for the optimizer (sgd 0.01, others 0.001). */
  readonly lr?: number;
  readonly l2?: number;
  /** SGD and RMSprop momentum (0 = none). */
  readonly momentum?: number;
  /** Adagrad initial accumulator (default 0.1, as in TF). */
  readonly initialAccumulator?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
  /** RMSprop decay of the squared-gradient average (default 0.9). */
  readonly rho?: number;
  /**
   * Adam only: update every row of every table on every step, like torch.optim.Adam (dense
   * gradients, weight_decay = l2): a row the batch did not touch gets gradient 0 + l2·w, and its
   * moments and step count advance too — so the classic PyTorch MF recipe is reproduced
   * (algorithmically; float32 rounding differs from torch's at the last bit). The strategies call
   * `applyRows` for each table in every step's gradient, which is every table of the models here.
   * Costs O(table size) per step. Default false: lazy, touched rows only.
   */
  readonly dense?: boolean;
}

/** Optimizer state of one parameter (table or dense tensor), row-major like the parameter. */
interface Slot {
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Per-row update counts (lazy Adam bias correction). */
  readonly steps: Int32Array;
  /** The table's arena when m and v live in it (then Adam's row loop runs in WebAssembly). */
  readonly arena?: Arena;
}

export class RowOptimizer {
  readonly config: Required<OptimizerConfig>;
  readonly #slots = new Map<string, Slot>();

  constructor(config: OptimizerConfig) {
    if (!Object.hasOwn(DEFAULT_LR, config.name)) throw new EmbeddingError(`unknown optimizer '${config.name}'; use sgd, adagrad, adam or rmsprop`);
    const lr = config.lr ?? DEFAULT_LR[config.name];
    if (!(lr > 0)) throw new EmbeddingError(`learning rate must be > 0, got ${lr}`);
    if (config.dense === true && config.name !== 'adam') throw new EmbeddingError(`dense: true is an Adam option (torch.optim.Adam); got optimizer '${config.name}'`);
    this.config = {
      l2: 0,
      momentum: 0,
      initialAccumulator: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: config.name === 'adagrad' ? 1e-10 : config.name === 'rmsprop' ? 1e-7 : 1e-8,
      rho: 0.9,
      dense: false,
      // Explicit `undefined`s must not override defaults.
      ...(Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as OptimizerConfig),
      lr,
    };
    for (const k of ['l2', 'momentum', 'initialAccumulator', 'epsilon'] as const) {
      if (!(this.config[k] >= 0)) throw new EmbeddingError(`optimizer ${k} must be >= 0, got ${this.config[k]}`);
    }
    for (const k of ['beta1', 'beta2', 'rho'] as const) {
      if (!(this.config[k] >= 0 && this.config[k] < 1)) throw new EmbeddingError(`optimizer ${k} must be in [0, 1), got ${this.config[k]}`);
    }
  }

  #slot(name: string, size: number, rows: number, data?: Float32Array): Slot {
    let s = this.#slots.get(name);
    // A table in an arena that no optimizer uses yet: its moments move into the arena (once).
    const arena = data === undefined ? undefined : arenaOf(data);
    const bind = arena !== undefined && arena.owner === undefined && arena.m.length === size && (s === undefined || (s.arena === undefined && s.m.length === size && s.steps.length === rows));
    if (s === undefined) {
      const v = bind ? arena.v : new Float32Array(size);
      if (this.config.name === 'adagrad') v.fill(this.config.initialAccumulator);
      s = bind ? { m: arena.m, v, steps: new Int32Array(rows), arena } : { m: new Float32Array(size), v, steps: new Int32Array(rows) };
      if (bind) arena.owner = s;
      this.#slots.set(name, s);
    } else if (bind) {
      arena.m.set(s.m);
      arena.v.set(s.v);
      s = { m: arena.m, v: arena.v, steps: s.steps, arena };
      arena.owner = s;
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
    const slot = this.#slot(table.name, table.data.length, table.rows, table.data);
    if (this.config.dense) {
      this.#applyAllRows(table, slot, rows, grads, lrScale);
      return;
    }
    if (useWasm && this.config.name === 'adam' && slot.arena !== undefined && arenaOf(table.data) === slot.arena && rows.length <= table.rows) {
      this.#adamWasm(table, slot, slot.arena, rows, grads, lrScale);
      return;
    }
    if (this.config.name === 'adam') {
      // The same updates as #update, with the per-step constants hoisted out of the row loop.
      const { l2, beta1, beta2, epsilon } = this.config;
      const lr = this.config.lr * lrScale;
      const { m, v, steps } = slot;
      const w = table.data;
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i];
        if (r < 0 || r >= table.rows) throw new EmbeddingError(`table ${table.name}: row ${r} is out of range 0…${table.rows - 1}`);
        const t = ++steps[r];
        adamRow(w, m, v, r * dim, grads, i * dim, dim, lr, l2, beta1, beta2, epsilon, this.#correction1(t), this.#correction2(t));
      }
      return;
    }
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r < 0 || r >= table.rows) throw new EmbeddingError(`table ${table.name}: row ${r} is out of range 0…${table.rows - 1}`);
      this.#update(table.data, slot, r, r * dim, grads, i * dim, dim, lrScale);
    }
  }

  /** Adam's bias corrections 1 − β^t, memoised per step count (the same Math.pow values, computed once). */
  #c1 = new Float64Array(0);
  #c2 = new Float64Array(0);

  #grow(t: number): void {
    const n = Math.min(MEMO_STEPS, Math.max(t + 1, 2 * this.#c1.length, 1024));
    const c1 = new Float64Array(n);
    const c2 = new Float64Array(n);
    for (let k = 1; k < n; k++) {
      c1[k] = 1 - Math.pow(this.config.beta1, k);
      c2[k] = 1 - Math.pow(this.config.beta2, k);
    }
    this.#c1 = c1;
    this.#c2 = c2;
  }

  #correction1(t: number): number {
    if (t < this.#c1.length) return this.#c1[t];
    if (t >= MEMO_STEPS) return 1 - Math.pow(this.config.beta1, t);
    this.#grow(t);
    return this.#c1[t];
  }

  #correction2(t: number): number {
    if (t < this.#c2.length) return this.#c2[t];
    if (t >= MEMO_STEPS) return 1 - Math.pow(this.config.beta2, t);
    this.#grow(t);
    return this.#c2[t];
  }

  /** Lazy Adam in WebAssembly SIMD on the table's arena (bit-identical to adamRow, rows in the same order). */
  #adamWasm(table: EmbeddingTable, slot: Slot, arena: Arena, rows: Int32Array, grads: Float32Array, lrScale: number): void {
    const { l2, beta1, beta2, epsilon } = this.config;
    const c = arena.corrections;
    const steps = slot.steps;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r < 0 || r >= table.rows) throw new EmbeddingError(`table ${table.name}: row ${r} is out of range 0…${table.rows - 1}`);
    }
    for (let i = 0; i < rows.length; i++) {
      const t = ++steps[rows[i]];
      c[2 * i] = this.#correction1(t);
      c[2 * i + 1] = this.#correction2(t);
    }
    arena.rowIds.set(rows);
    arena.grads.set(grads);
    const o = arena.offsets;
    arena.kernels.adam(o.rowIds, rows.length, table.dim, o.data, o.m, o.v, o.grads, o.corrections, this.config.lr * lrScale, l2, beta1, beta2, 1 - beta1, 1 - beta2, epsilon);
  }

  /** Dense Adam: every row moves, rows without a gradient with gradient 0 (plus l2·w), in row order. */
  #applyAllRows(table: EmbeddingTable, slot: Slot, rows: Int32Array, grads: Float32Array, lrScale: number): void {
    const dim = table.dim;
    const at = new Int32Array(table.rows).fill(-1);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r < 0 || r >= table.rows) throw new EmbeddingError(`table ${table.name}: row ${r} is out of range 0…${table.rows - 1}`);
      if (at[r] !== -1) throw new EmbeddingError(`table ${table.name}: row ${r} appears twice in a gradient (deduplicate it first)`);
      at[r] = i;
    }
    const zero = new Float32Array(dim);
    for (let r = 0; r < table.rows; r++) {
      if (at[r] === -1) this.#update(table.data, slot, r, r * dim, zero, 0, dim, lrScale);
      else this.#update(table.data, slot, r, r * dim, grads, at[r] * dim, dim, lrScale);
    }
  }

  /** Applies a dense gradient to a dense parameter (one "row" covering the whole tensor). */
  applyDense(name: string, param: Float32Array, grad: Float32Array, lrScale = 1): void {
    if (grad.length !== param.length) throw new EmbeddingError(`dense ${name}: gradient has ${grad.length} values, parameter ${param.length}`);
    const slot = this.#slot(`dense:${name}`, param.length, 1);
    this.#update(param, slot, 0, 0, grad, 0, param.length, lrScale);
  }

  #update(w: Float32Array, s: Slot, row: number, off: number, g: Float32Array, goff: number, n: number, lrScale: number): void {
    const { name, l2, momentum, beta1, beta2, epsilon, rho } = this.config;
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
    } else if (name === 'rmsprop') {
      for (let k = 0; k < n; k++) {
        const grad = g[goff + k] + l2 * w[off + k];
        s.v[off + k] = rho * s.v[off + k] + (1 - rho) * grad * grad;
        const delta = (lr * grad) / Math.sqrt(s.v[off + k] + epsilon);
        if (momentum > 0) {
          s.m[off + k] = momentum * s.m[off + k] + delta;
          w[off + k] -= s.m[off + k];
        } else w[off + k] -= delta;
      }
    } else {
      const t = ++s.steps[row];
      adamRow(w, s.m, s.v, off, g, goff, n, lr, l2, beta1, beta2, epsilon, this.#correction1(t), this.#correction2(t));
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

/** One row of Adam, every operand a local: V8 keeps this loop tight (property loads inside it cost 2×). */
function adamRow(
  w: Float32Array,
  m: Float32Array,
  v: Float32Array,
  off: number,
  g: Float32Array,
  goff: number,
  n: number,
  lr: number,
  l2: number,
  beta1: number,
  beta2: number,
  epsilon: number,
  c1: number,
  c2: number,
): void {
  const b1 = 1 - beta1;
  const b2 = 1 - beta2;
  for (let k = 0; k < n; k++) {
    const i = off + k;
    const grad = g[goff + k] + l2 * w[i];
    const mi = beta1 * m[i] + b1 * grad;
    const vi = beta2 * v[i] + b2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    // Same expression as before the rewrite, on the float32-rounded moments: results are bit-identical.
    w[i] -= (lr * (Math.fround(mi) / c1)) / (Math.sqrt(Math.fround(vi) / c2) + epsilon);
  }
}
