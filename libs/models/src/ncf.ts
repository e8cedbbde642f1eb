// NCF for explicit ratings (the MLP branch of He et al. 2017, regressing ratings): user and item
// embeddings concatenated → hidden ReLU layers → one linear output, plus the global mean, MSE.
// Embeddings are tables (row-wise sparse updates); the layers are dense typed arrays like every
// other parameter (DESIGN.md "Parameters"), rebuilt as tensors each step.
//
// Also the small MLP helpers NeuMF shares (layer-size parsing, Glorot specs, the forward pass).
import { readTidy, type Tf } from '@actorflow/engine';
import { dedupeSparseGradient } from '@actorflow/embeddings';
import type { RatingsBatch } from '@actorflow/data';
import { ModelError, needTable, perExample, uniqueSorted, type DenseSpec, type GatheredParams, type StepResult, type TableSpec, type TrainableModel, lossAndGrads } from './model.ts';
import { regOf } from './l2.ts';
import { registerModel, type Hyper } from './registry.ts';

type Tensor = ReturnType<Tf['tensor']>;
type Tensor2D = ReturnType<Tf['tensor2d']>;

/** "64,32" (or a single number) → [64, 32]; every size a positive integer. */
export function parseLayers(model: string, spec: string | number | boolean | undefined): number[] {
  const text = typeof spec === 'number' ? String(spec) : spec;
  if (typeof text !== 'string') throw new ModelError(`${model}: layers must be a string like "64,32", got ${String(spec)}`);
  const sizes = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new ModelError(`${model}: layers must be positive integers separated by commas, like "64,32"; got "${text}"`);
  return sizes;
}

/** Dense specs of an MLP `prefix.mlp<l>.{w,b}`: w is in × out row-major, Glorot-uniform; b zeros. */
export function mlpSpecs(prefix: string, inputs: number, layers: readonly number[]): DenseSpec[] {
  const specs: DenseSpec[] = [];
  let fanIn = inputs;
  layers.forEach((out, l) => {
    specs.push({ name: `${prefix}.mlp${l}.w`, size: fanIn * out, init: { kind: 'uniform', scale: Math.sqrt(6 / (fanIn + out)) } });
    specs.push({ name: `${prefix}.mlp${l}.b`, size: out, init: { kind: 'zeros' } });
    fanIn = out;
  });
  return specs;
}

/** The dense arrays named by `specs`, checked for presence and size. */
export function denseOf(model: string, p: GatheredParams, specs: readonly DenseSpec[]): Float32Array[] {
  return specs.map((s) => {
    const v = p.dense[s.name];
    if (v === undefined || v.length !== s.size) throw new ModelError(`${model}: dense '${s.name}' must have ${s.size} values, got ${v === undefined ? 'none' : v.length}`);
    return v;
  });
}

/** Tensors for MLP parameters given as [w0, b0, w1, b1, …] arrays. */
export function mlpTensors(tf: Tf, inputs: number, layers: readonly number[], values: readonly Float32Array[]): Tensor[] {
  const out: Tensor[] = [];
  let fanIn = inputs;
  layers.forEach((size, l) => {
    out.push(tf.tensor2d(values[2 * l], [fanIn, size]), tf.tensor1d(values[2 * l + 1]));
    fanIn = size;
  });
  return out;
}

/** ReLU layers: x → relu(x·W_l + b_l) for each (W_l, b_l) in [w0, b0, w1, b1, …]. */
export function mlpForward(tf: Tf, x: Tensor2D, wb: readonly Tensor[]): Tensor2D {
  let h = x;
  for (let l = 0; l + 1 < wb.length; l += 2) h = tf.relu(tf.add(tf.matMul(h, wb[l] as Tensor2D), wb[l + 1])) as Tensor2D;
  return h;
}

export function numberHyper(model: string, h: Hyper, k: string): number {
  const v = h[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError(`${model}: hyper-parameter '${k}' must be a number, got ${String(v)}`);
  return v;
}

// needTable lives in model.ts; re-exported here for the models that import it from ncf.ts.
export { needTable };

export interface NcfOptions {
  readonly numUsers: number;
  readonly numItems: number;
  /** Embedding size of users and of items (the MLP input is 2·dim). */
  readonly dim: number;
  /** Hidden layer sizes. */
  readonly layers: readonly number[];
  readonly initStd: number;
  readonly globalMean: number;
  /** Per-example L2 λ on the user and item embedding rows (src/l2.ts; 0: none). The MLP weights take the optimizer's l2. */
  readonly reg?: number;
}

export class Ncf implements TrainableModel<RatingsBatch> {
  readonly name = 'ncf';
  readonly input = 'ratings';
  readonly task = 'rating';
  readonly #o: NcfOptions;
  readonly #mlp: DenseSpec[];

  constructor(o: NcfOptions) {
    if (!(o.numUsers > 0 && o.numItems > 0)) throw new ModelError(`ncf needs numUsers and numItems > 0, got ${o.numUsers} and ${o.numItems}`);
    if (!Number.isInteger(o.dim) || o.dim < 1) throw new ModelError(`ncf dim must be a positive integer, got ${o.dim}`);
    if (o.layers.length === 0) throw new ModelError('ncf needs at least one hidden layer');
    this.#o = o;
    this.#mlp = mlpSpecs('ncf', 2 * o.dim, o.layers);
  }

  tableSpecs(): TableSpec[] {
    const { numUsers, numItems, dim, initStd } = this.#o;
    return [
      { name: 'item', rows: numItems, dim, init: { kind: 'normal', std: initStd } },
      { name: 'user', rows: numUsers, dim, init: { kind: 'normal', std: initStd } },
    ];
  }

  denseSpecs(): DenseSpec[] {
    const last = this.#o.layers[this.#o.layers.length - 1];
    return [
      ...this.#mlp,
      { name: 'ncf.out.w', size: last, init: { kind: 'uniform', scale: Math.sqrt(6 / (last + 1)) } },
      { name: 'ncf.out.b', size: 1, init: { kind: 'zeros' } },
      { name: 'mean', size: 1, init: { kind: 'constant', value: this.#o.globalMean } },
    ];
  }

  rowsFor(batch: RatingsBatch): Record<string, Int32Array> {
    return { user: uniqueSorted(batch.user), item: uniqueSorted(batch.item) };
  }

  /** Tensors in a fixed order: [U, I, w0, b0, …, outW, outB, mean]. */
  #tensors(tf: Tf, batch: RatingsBatch, p: GatheredParams): Tensor[] {
    const n = batch.user.length;
    const d = this.#o.dim;
    const [outW, outB, mean] = denseOf('ncf', p, this.denseSpecs().slice(this.#mlp.length));
    return [
      tf.tensor2d(perExample(batch.user, needTable('ncf', p, 'user'), d, 'user'), [n, d]),
      tf.tensor2d(perExample(batch.item, needTable('ncf', p, 'item'), d, 'item'), [n, d]),
      ...mlpTensors(tf, 2 * d, this.#o.layers, denseOf('ncf', p, this.#mlp)),
      tf.tensor2d(outW, [outW.length, 1]),
      tf.scalar(outB[0]),
      tf.scalar(mean[0]),
    ];
  }

  #forward(tf: Tf, t: readonly Tensor[]): Tensor {
    const k = t.length;
    const h = mlpForward(tf, tf.concat([t[0] as Tensor2D, t[1] as Tensor2D], 1), t.slice(2, k - 3));
    return tf.add(tf.add(tf.reshape(tf.matMul(h, t[k - 3] as Tensor2D), [-1]), t[k - 2]), t[k - 1]);
  }

  computeGradients(tf: Tf, batch: RatingsBatch, params: GatheredParams): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('ncf: empty batch');
    const out = lossAndGrads(
      readTidy(tf, () => {
        const inputs = this.#tensors(tf, batch, params);
        const r = tf.tensor1d(batch.rating);
        const reg = this.#o.reg ?? 0;
        // Per-example L2 (src/l2.ts): λ/n Σ_examples (‖u‖² + ‖i‖²) over the per-example rows, so a
        // row used c times in the batch gets 2λc/n·w once the per-example gradients are summed.
        const f = (...t: Tensor[]) => {
          const mse = tf.mean(tf.square(tf.sub(this.#forward(tf, t), r)));
          return (reg > 0 ? tf.add(mse, tf.mul(tf.scalar(reg / n), tf.add(tf.sum(tf.square(t[0])), tf.sum(tf.square(t[1]))))) : mse) as ReturnType<Tf['scalar']>;
        };
        const { value, grads } = tf.valueAndGrads(f)(inputs);
        return [value, ...grads];
      }),
    );
    const d = this.#o.dim;
    const names = this.denseSpecs().map((s) => s.name);
    return {
      loss: out.loss,
      count: n,
      sparse: { user: dedupeSparseGradient(batch.user, out.g[0], d), item: dedupeSparseGradient(batch.item, out.g[1], d) },
      dense: Object.fromEntries(names.map((name, k) => [name, out.g[2 + k]])),
    };
  }

  predict(tf: Tf, batch: RatingsBatch, params: GatheredParams): Float32Array {
    if (batch.user.length === 0) return new Float32Array(0);
    return readTidy(tf, () => this.#forward(tf, this.#tensors(tf, batch, params)));
  }
}

registerModel({
  name: 'ncf',
  description: 'NCF for ratings: [user ‖ item] embeddings → ReLU MLP (layers "64,32") → linear + μ, MSE',
  defaults: { numUsers: 0, numItems: 0, dim: 16, layers: '64,32', initStd: 0.1, globalMean: 0, reg: 0.3 },
  // reg: per-example L2 on the embedding rows (src/l2.ts), calibrated on synthetic data of MovieLens's
  // shapes (docs/MODELS.md): 0.3 is within 0.8 % (100K shape) and 1.7 % (1M shape) of each shape's
  // best grid point. No optimizer l2: its per-batch value has no setting that fits both shapes
  // (5e-4 is best on the 100K shape but 37 % worse on the 1M shape).
  recommended: { optimizer: { name: 'adam', lr: 0.003 }, batchSize: 1024, epochs: 10, earlyStop: { validation: 0.05, patience: 2, maxEpochs: 10 } },
  create: (h) =>
    new Ncf({
      numUsers: numberHyper('ncf', h, 'numUsers'),
      numItems: numberHyper('ncf', h, 'numItems'),
      dim: numberHyper('ncf', h, 'dim'),
      layers: parseLayers('ncf', h.layers),
      initStd: numberHyper('ncf', h, 'initStd'),
      globalMean: numberHyper('ncf', h, 'globalMean'),
      reg: regOf('ncf', h.reg),
    }) as TrainableModel<unknown>,
});
