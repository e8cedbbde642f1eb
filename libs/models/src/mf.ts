// Biased matrix factorisation ("SVD"): r̂(u,i) = μ + b_u + b_i + p_u · q_i, MSE loss. Factors and
// biases are embedding tables (biases with dim 1), μ a dense scalar that starts at the training
// mean. L2 on the touched rows is the optimizer's job (see @actorflow/embeddings).
import { readTidy, type Tf } from '@actorflow/engine';
import { biasedDotMse, biasedDotPredict, dedupeSparseGradient, type BiasedDotInputs, type SparseGradient } from '@actorflow/embeddings';
import type { InteractionsBatch, RatingsBatch } from '@actorflow/data';
import { addPerExampleL2, regOf } from './l2.ts';
import { ModelError, needTable, perExample, uniqueSorted, type DenseSpec, type GatheredParams, type StepResult, type TableSpec, type TrainableModel } from './model.ts';
import { registerModel, type Hyper } from './registry.ts';

export interface MfOptions {
  readonly numUsers: number;
  readonly numItems: number;
  readonly dim: number;
  /** Std of the factors' normal init. */
  readonly initStd: number;
  readonly globalMean: number;
  /** Per-example L2 λ (src/l2.ts; 0: none, the optimizer's l2 only). */
  readonly reg?: number;
}

export class BiasedMF implements TrainableModel<RatingsBatch> {
  readonly name = 'mf';
  readonly #o: MfOptions;

  constructor(o: MfOptions) {
    if (!(o.numUsers > 0 && o.numItems > 0)) throw new ModelError(`mf needs numUsers and numItems > 0, got ${o.numUsers} and ${o.numItems}`);
    if (!Number.isInteger(o.dim) || o.dim < 1) throw new ModelError(`mf dim must be a positive integer, got ${o.dim}`);
    this.#o = o;
  }

  tableSpecs(): TableSpec[] {
    const { numUsers, numItems, dim, initStd } = this.#o;
    return [
      // Users or items unseen in training predict with the mean factor row (and mean bias).
      { name: 'item', rows: numItems, dim, init: { kind: 'normal', std: initStd }, coldStart: { ids: 'items' } },
      { name: 'itemBias', rows: numItems, dim: 1, init: { kind: 'zeros' }, coldStart: { ids: 'items' } },
      { name: 'user', rows: numUsers, dim, init: { kind: 'normal', std: initStd }, coldStart: { ids: 'users' } },
      { name: 'userBias', rows: numUsers, dim: 1, init: { kind: 'zeros' }, coldStart: { ids: 'users' } },
    ];
  }

  denseSpecs(): DenseSpec[] {
    return [{ name: 'mean', size: 1, init: { kind: 'constant', value: this.#o.globalMean } }];
  }

  rowsFor(batch: RatingsBatch): Record<string, Int32Array> {
    const users = uniqueSorted(batch.user);
    const items = uniqueSorted(batch.item);
    return { user: users, userBias: users, item: items, itemBias: items };
  }

  #inputs(batch: RatingsBatch, p: GatheredParams): { P: Float32Array; Q: Float32Array; bu: Float32Array; bi: Float32Array; mu: Float32Array } {
    const d = this.#o.dim;
    const need = (name: string): { rows: Int32Array; values: Float32Array } => needTable('mf', p, name);
    const mu = meanOf(p);
    return {
      P: perExample(batch.user, need('user'), d, 'user'),
      Q: perExample(batch.item, need('item'), d, 'item'),
      bu: perExample(batch.user, need('userBias'), 1, 'userBias'),
      bi: perExample(batch.item, need('itemBias'), 1, 'itemBias'),
      mu,
    };
  }

  #kernelInputs(batch: RatingsBatch, p: GatheredParams): BiasedDotInputs {
    const need = (name: string): { rows: Int32Array; values: Float32Array } => needTable('mf', p, name);
    const mu = meanOf(p);
    return { user: batch.user, item: batch.item, dim: this.#o.dim, users: need('user'), items: need('item'), userBias: need('userBias'), itemBias: need('itemBias'), mean: mu[0] };
  }

  /** One fused pass over the batch (no TF.js op): see @actorflow/embeddings' interactions kernels. */
  computeGradients(_tf: Tf, batch: RatingsBatch, params: GatheredParams): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('mf: empty batch');
    const g = biasedDotMse(this.#kernelInputs(batch, params), batch.rating);
    const sparse = { item: g.item, itemBias: g.itemBias, user: g.user, userBias: g.userBias };
    return { loss: g.loss + this.#l2(batch, params, sparse), count: n, sparse, dense: { mean: Float32Array.of(g.mean) } };
  }

  /** Per-example L2 on the batch's rows (src/l2.ts), added to `sparse` in place; the penalty's share of the loss. */
  #l2(batch: RatingsBatch, p: GatheredParams, sparse: Record<'item' | 'itemBias' | 'user' | 'userBias', SparseGradient>): number {
    const reg = this.#o.reg ?? 0;
    if (reg === 0) return 0;
    const n = batch.user.length;
    const d = this.#o.dim;
    const need = (name: string): { rows: Int32Array; values: Float32Array } => needTable('mf', p, name);
    return (
      addPerExampleL2(sparse.user, batch.user, need('user'), d, reg, n, 'mf user') +
      addPerExampleL2(sparse.userBias, batch.user, need('userBias'), 1, reg, n, 'mf userBias') +
      addPerExampleL2(sparse.item, batch.item, need('item'), d, reg, n, 'mf item') +
      addPerExampleL2(sparse.itemBias, batch.item, need('itemBias'), 1, reg, n, 'mf itemBias')
    );
  }

  /** The TF.js autodiff formulation of the same step: the reference the fused kernel is tested against. */
  computeGradientsAutodiff(tf: Tf, batch: RatingsBatch, params: GatheredParams): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('mf: empty batch');
    const d = this.#o.dim;
    const x = this.#inputs(batch, params);
    const [loss, gP, gQ, gBu, gBi, gMu] = readTidy(tf, () => {
      const P = tf.tensor2d(x.P, [n, d]);
      const Q = tf.tensor2d(x.Q, [n, d]);
      const bu = tf.tensor1d(x.bu);
      const bi = tf.tensor1d(x.bi);
      const mu = tf.scalar(x.mu[0]);
      const r = tf.tensor1d(batch.rating);
      // Tensors in the order [P, Q, bu, bi, mu].
      const reg = this.#o.reg ?? 0;
      // Per-example L2: λ/n Σ_examples (‖p_u‖² + ‖q_i‖² + b_u² + b_i²) over the per-example rows.
      const penalty = (t: ReturnType<typeof tf.tensor>[]) =>
        tf.mul(tf.scalar(reg / n), tf.add(tf.add(tf.sum(tf.square(t[0])), tf.sum(tf.square(t[1]))), tf.add(tf.sum(tf.square(t[2])), tf.sum(tf.square(t[3])))));
      const f = (...t: ReturnType<typeof tf.tensor>[]) => {
        const mse = tf.mean(tf.square(tf.sub(tf.add(tf.add(tf.add(t[4], t[2]), t[3]), tf.sum(tf.mul(t[0], t[1]), 1)), r)));
        return (reg > 0 ? tf.add(mse, penalty(t)) : mse) as ReturnType<typeof tf.scalar>;
      };
      const { value, grads } = tf.valueAndGrads(f)([P, Q, bu, bi, mu]);
      return [value, ...grads];
    });
    return {
      loss: loss[0],
      count: n,
      sparse: {
        item: dedupeSparseGradient(batch.item, gQ, d),
        itemBias: dedupeSparseGradient(batch.item, gBi, 1),
        user: dedupeSparseGradient(batch.user, gP, d),
        userBias: dedupeSparseGradient(batch.user, gBu, 1),
      },
      dense: { mean: Float32Array.from(gMu) },
    };
  }

  predict(_tf: Tf, batch: RatingsBatch, params: GatheredParams): Float32Array {
    if (batch.user.length === 0) return new Float32Array(0);
    return biasedDotPredict(this.#kernelInputs(batch, params));
  }

  /** Top-N needs every item's rows and the users' own. */
  rowsForScoring(history: InteractionsBatch): Record<string, Int32Array> {
    const users = uniqueSorted(history.user);
    const items = Int32Array.from({ length: this.#o.numItems }, (_, i) => i);
    return { user: users, userBias: users, item: items, itemBias: items };
  }

  /** Predicted ratings of every item for each user of `history` (n × numItems), items in chunks to bound the product. */
  scoreItems(tf: Tf, history: InteractionsBatch, params: GatheredParams): Float32Array {
    const n = history.user.length;
    const m = this.#o.numItems;
    const d = this.#o.dim;
    const out = new Float32Array(n * m);
    if (n === 0) return out;
    const all = Int32Array.from({ length: m }, (_, i) => i);
    const x = this.#inputs({ user: history.user, item: all, rating: new Float32Array(0) }, params);
    const P = x.P.subarray(0, n * d);
    const bu = x.bu.subarray(0, n);
    const chunk = Math.max(1, Math.floor((1 << 20) / n));
    for (let start = 0; start < m; start += chunk) {
      const c = Math.min(chunk, m - start);
      const s = readTidy(tf, () => {
        const dot = tf.matMul(tf.tensor2d(P, [n, d]), tf.tensor2d(x.Q.subarray(start * d, (start + c) * d), [c, d]), false, true);
        const bias = tf.add(tf.reshape(tf.tensor1d(bu), [n, 1]), tf.reshape(tf.tensor1d(x.bi.subarray(start, start + c)), [1, c]));
        return tf.add(tf.add(dot, bias), tf.scalar(x.mu[0]));
      });
      for (let k = 0; k < n; k++) out.set(s.subarray(k * c, (k + 1) * c), k * m + start);
    }
    return out;
  }
}

function meanOf(p: GatheredParams): Float32Array {
  const mu = p.dense.mean;
  if (mu === undefined || mu.length !== 1) throw new ModelError(`mf: dense 'mean' must be one value`);
  return mu;
}

function num(h: Hyper, k: string): number {
  const v = h[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelError(`mf: hyper-parameter '${k}' must be a number, got ${String(v)}`);
  return v;
}

registerModel({
  name: 'mf',
  description: 'biased matrix factorisation (SVD): μ + b_u + b_i + p_u·q_i, MSE',
  // reg: per-example L2 (src/l2.ts), calibrated on synthetic data of MovieLens's shapes (docs/MODELS.md):
  // 0.05 is within 1 % of the best grid point on the 100K and 1M shapes, where the optimizer's per-batch
  // l2 2e-4 (the old default) was 6.8 % off on the 1M shape; so the recommended optimizer has no l2.
  defaults: { numUsers: 0, numItems: 0, dim: 16, initStd: 0.1, reg: 0.05, globalMean: 0 },
  recommended: { optimizer: { name: 'adam', lr: 0.01, l2: 0 }, batchSize: 1024, epochs: 10, earlyStop: { validation: 0.05, patience: 2, maxEpochs: 10 } },
  create: (h) =>
    new BiasedMF({
      numUsers: num(h, 'numUsers'),
      numItems: num(h, 'numItems'),
      dim: num(h, 'dim'),
      initStd: num(h, 'initStd'),
      reg: regOf('mf', h.reg),
      globalMean: num(h, 'globalMean'),
    }) as TrainableModel<unknown>,
});
