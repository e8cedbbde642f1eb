// SVD++ (Koren 2008): r̂(u,i) = μ + b_u + b_i + q_i · (p_u + |N(u)|^-½ Σ_{j∈N(u)} y_j), MSE.
// N(u) is u's training items, carried by the batch (`history`, hence needsHistory). The implicit
// term is an embedding bag (sqrtn combiner) over table `implicit`, computed on typed arrays: TF.js
// sees one implicit vector per example and its gradient is folded back onto the y rows by
// bagBackward, so only the rows in the batch's histories are sent and updated.
import { readTidy, type Tf } from '@actorflow/engine';
import { bagBackward, bagForward, biasedDotMse, biasedDotPredict, dedupeSparseGradient, sortedIndexOf, type BiasedDotInputs, type SparseGradient } from '@actorflow/embeddings';
import type { InteractionsBatch } from '@actorflow/data';
import { ModelError, perExample, uniqueSorted, type DenseSpec, type GatheredParams, type RatingsWithHistory, type StepResult, type TableSpec, type TrainableModel, lossAndGrads } from './model.ts';
import { addPerExampleL2, regOf } from './l2.ts';
import { registerModel } from './registry.ts';
import { needTable, numberHyper } from './ncf.ts';

type Tensor = ReturnType<Tf['tensor']>;

export interface SvdppOptions {
  readonly numUsers: number;
  readonly numItems: number;
  readonly dim: number;
  /** Std of the normal init of p, q and y. */
  readonly initStd: number;
  readonly globalMean: number;
  /** Per-example L2 λ (src/l2.ts) on p_u, q_i, b_u, b_i and every y_j of N(u), as Surprise's SVDpp; 0: none. */
  readonly reg?: number;
}

/** The implicit rows each example uses: N(u) of its user, concatenated in example order. */
function implicitIdsPerExample(history: InteractionsBatch, at: Int32Array): Int32Array {
  let total = 0;
  for (let e = 0; e < at.length; e++) total += history.offsets[at[e] + 1] - history.offsets[at[e]];
  const out = new Int32Array(total);
  let k = 0;
  for (let e = 0; e < at.length; e++) for (let j = history.offsets[at[e]]; j < history.offsets[at[e] + 1]; j++) out[k++] = history.items[j];
  return out;
}

/** Position of each example's user among the history rows (sorted by user). */
function historyRowOf(history: InteractionsBatch, users: Int32Array): Int32Array {
  const out = new Int32Array(users.length);
  for (let i = 0; i < users.length; i++) {
    const at = sortedIndexOf(history.user, users[i]);
    if (at < 0) throw new ModelError(`svdpp: the batch's history has no row for user ${users[i]}`);
    out[i] = at;
  }
  return out;
}

export class SvdPlusPlus implements TrainableModel<RatingsWithHistory> {
  readonly name = 'svdpp';
  readonly input = 'ratings';
  readonly task = 'rating';
  readonly needsHistory = true;
  readonly #o: SvdppOptions;

  constructor(o: SvdppOptions) {
    if (!(o.numUsers > 0 && o.numItems > 0)) throw new ModelError(`svdpp needs numUsers and numItems > 0, got ${o.numUsers} and ${o.numItems}`);
    if (!Number.isInteger(o.dim) || o.dim < 1) throw new ModelError(`svdpp dim must be a positive integer, got ${o.dim}`);
    this.#o = o;
  }

  tableSpecs(): TableSpec[] {
    const { numUsers, numItems, dim, initStd } = this.#o;
    return [
      { name: 'implicit', rows: numItems, dim, init: { kind: 'normal', std: initStd } },
      { name: 'item', rows: numItems, dim, init: { kind: 'normal', std: initStd } },
      { name: 'itemBias', rows: numItems, dim: 1, init: { kind: 'zeros' } },
      { name: 'user', rows: numUsers, dim, init: { kind: 'normal', std: initStd } },
      { name: 'userBias', rows: numUsers, dim: 1, init: { kind: 'zeros' } },
    ];
  }

  denseSpecs(): DenseSpec[] {
    return [{ name: 'mean', size: 1, init: { kind: 'constant', value: this.#o.globalMean } }];
  }

  #history(batch: RatingsWithHistory): InteractionsBatch {
    if (batch.history === undefined) throw new ModelError('svdpp: the batch carries no user histories (the model sets needsHistory; the strategy must attach them)');
    return batch.history;
  }

  rowsFor(batch: RatingsWithHistory): Record<string, Int32Array> {
    const users = uniqueSorted(batch.user);
    const items = uniqueSorted(batch.item);
    return { user: users, userBias: users, item: items, itemBias: items, implicit: uniqueSorted(this.#history(batch).items) };
  }

  /** Inputs as typed arrays: per-example rows, the implicit vector per example, and the history row of each example. */
  #inputs(batch: RatingsWithHistory, p: GatheredParams) {
    const d = this.#o.dim;
    const history = this.#history(batch);
    const mu = p.dense.mean;
    if (mu === undefined || mu.length !== 1) throw new ModelError(`svdpp: dense 'mean' must be one value`);
    // One implicit vector per history row (user), then one per example.
    const perUser = bagForward(needTable('svdpp', p, 'implicit'), d, history.offsets, history.items, undefined, 'sqrtn');
    const at = historyRowOf(history, batch.user);
    const Z = new Float32Array(batch.user.length * d);
    for (let i = 0; i < at.length; i++) Z.set(perUser.subarray(at[i] * d, (at[i] + 1) * d), i * d);
    const yIds = implicitIdsPerExample(history, at);
    return {
      history,
      at,
      P: perExample(batch.user, needTable('svdpp', p, 'user'), d, 'user'),
      Z,
      Q: perExample(batch.item, needTable('svdpp', p, 'item'), d, 'item'),
      bu: perExample(batch.user, needTable('svdpp', p, 'userBias'), 1, 'userBias'),
      bi: perExample(batch.item, needTable('svdpp', p, 'itemBias'), 1, 'itemBias'),
      mu: mu[0],
      yIds,
      Y: perExample(yIds, needTable('svdpp', p, 'implicit'), d, 'implicit'),
    };
  }

  /** Tensors [P, Z, Q, bu, bi, mu] → predictions. */
  #forward(tf: Tf, t: readonly Tensor[]): Tensor {
    return tf.add(tf.add(tf.add(t[5], t[3]), t[4]), tf.sum(tf.mul(tf.add(t[0], t[1]), t[2]), 1));
  }

  /** Kernel inputs: the gathered rows as they are, and each user's implicit vector aligned with the user rows. */
  #kernelInputs(batch: RatingsWithHistory, p: GatheredParams): BiasedDotInputs & { readonly userExtra: Float32Array; readonly historyRow: Int32Array } {
    const d = this.#o.dim;
    const history = this.#history(batch);
    const mu = p.dense.mean;
    if (mu === undefined || mu.length !== 1) throw new ModelError(`svdpp: dense 'mean' must be one value`);
    const users = needTable('svdpp', p, 'user');
    const perHistoryRow = bagForward(needTable('svdpp', p, 'implicit'), d, history.offsets, history.items, undefined, 'sqrtn');
    // History rows are the batch's users, sorted; place each on its gathered user row.
    // A gathered user without a history row has an empty bag (zero implicit term); every user of the batch must have one.
    historyRowOf(history, batch.user);
    const historyRow = users.rows.map((u) => sortedIndexOf(history.user, u));
    const userExtra = new Float32Array(users.values.length);
    for (let r = 0; r < historyRow.length; r++) if (historyRow[r] >= 0) userExtra.set(perHistoryRow.subarray(historyRow[r] * d, (historyRow[r] + 1) * d), r * d);
    return {
      user: batch.user,
      item: batch.item,
      dim: d,
      users,
      items: needTable('svdpp', p, 'item'),
      userBias: needTable('svdpp', p, 'userBias'),
      itemBias: needTable('svdpp', p, 'itemBias'),
      mean: mu[0],
      userExtra,
      historyRow,
    };
  }

  /** One fused pass (no TF.js op); the implicit term's gradient is folded onto the y rows by bagBackward. */
  computeGradients(_tf: Tf, batch: RatingsWithHistory, params: GatheredParams): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('svdpp: empty batch');
    const d = this.#o.dim;
    const x = this.#kernelInputs(batch, params);
    const g = biasedDotMse(x, batch.rating);
    const history = this.#history(batch);
    const gExtra = g.userExtra ?? new Float32Array(0);
    const perHistoryRow = new Float32Array(history.user.length * d);
    for (let r = 0; r < x.historyRow.length; r++) if (x.historyRow[r] >= 0) perHistoryRow.set(gExtra.subarray(r * d, (r + 1) * d), x.historyRow[r] * d);
    const sparse = {
      implicit: bagBackward(perHistoryRow, d, history.offsets, history.items, undefined, 'sqrtn'),
      item: g.item,
      itemBias: g.itemBias,
      user: g.user,
      userBias: g.userBias,
    };
    return { loss: g.loss + this.#l2(batch, params, sparse), count: n, sparse, dense: { mean: Float32Array.of(g.mean) } };
  }

  /** Per-example L2 (src/l2.ts) added to `sparse` in place; the penalty's share of the loss. */
  #l2(batch: RatingsWithHistory, p: GatheredParams, sparse: Record<'implicit' | 'item' | 'itemBias' | 'user' | 'userBias', SparseGradient>): number {
    const reg = this.#o.reg ?? 0;
    if (reg === 0) return 0;
    const n = batch.user.length;
    const d = this.#o.dim;
    const need = (name: string): { rows: Int32Array; values: Float32Array } => needTable('svdpp', p, name);
    const history = this.#history(batch);
    return (
      addPerExampleL2(sparse.user, batch.user, need('user'), d, reg, n, 'svdpp user') +
      addPerExampleL2(sparse.userBias, batch.user, need('userBias'), 1, reg, n, 'svdpp userBias') +
      addPerExampleL2(sparse.item, batch.item, need('item'), d, reg, n, 'svdpp item') +
      addPerExampleL2(sparse.itemBias, batch.item, need('itemBias'), 1, reg, n, 'svdpp itemBias') +
      addPerExampleL2(sparse.implicit, implicitIdsPerExample(history, historyRowOf(history, batch.user)), need('implicit'), d, reg, n, 'svdpp implicit')
    );
  }

  /** The TF.js autodiff formulation of the same step: the reference the fused kernel is tested against. */
  computeGradientsAutodiff(tf: Tf, batch: RatingsWithHistory, params: GatheredParams): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('svdpp: empty batch');
    const d = this.#o.dim;
    const x = this.#inputs(batch, params);
    const out = lossAndGrads(
      readTidy(tf, () => {
        const inputs = [tf.tensor2d(x.P, [n, d]), tf.tensor2d(x.Z, [n, d]), tf.tensor2d(x.Q, [n, d]), tf.tensor1d(x.bu), tf.tensor1d(x.bi), tf.scalar(x.mu)];
        const r = tf.tensor1d(batch.rating);
        const reg = this.#o.reg ?? 0;
        // Per-example L2: λ/n Σ_examples (‖p_u‖² + ‖q_i‖² + b_u² + b_i² + Σ_{j∈N(u)} ‖y_j‖²); Y holds each example's y rows.
        const sumSq = (t: Tensor): Tensor => tf.sum(tf.square(t));
        const penalty = (t: Tensor[]): Tensor => tf.mul(tf.scalar(reg / n), tf.addN([sumSq(t[0]), sumSq(t[2]), sumSq(t[3]), sumSq(t[4]), sumSq(t[6])]));
        if (reg > 0) inputs.push(tf.tensor2d(x.Y, [x.yIds.length, d]));
        const f = (...t: Tensor[]) => {
          const mse = tf.mean(tf.square(tf.sub(this.#forward(tf, t), r)));
          return (reg > 0 ? tf.add(mse, penalty(t)) : mse) as ReturnType<Tf['scalar']>;
        };
        const { value, grads } = tf.valueAndGrads(f)(inputs);
        return [value, ...grads];
      }),
    );
    const [gP, gZ, gQ, gBu, gBi, gMu, gY] = out.g;
    // Fold the per-example implicit gradients onto their users' bags (examples in order: reproducible).
    const perUser = new Float32Array(x.history.user.length * d);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) perUser[x.at[i] * d + k] += gZ[i * d + k];
    const implicit = bagBackward(perUser, d, x.history.offsets, x.history.items, undefined, 'sqrtn');
    if (gY !== undefined) {
      const penalty = dedupeSparseGradient(x.yIds, gY, d);
      for (let r = 0; r < penalty.rows.length; r++) {
        const at = sortedIndexOf(implicit.rows, penalty.rows[r]);
        for (let k = 0; k < d; k++) implicit.values[at * d + k] += penalty.values[r * d + k];
      }
    }
    return {
      loss: out.loss,
      count: n,
      sparse: {
        implicit,
        item: dedupeSparseGradient(batch.item, gQ, d),
        itemBias: dedupeSparseGradient(batch.item, gBi, 1),
        user: dedupeSparseGradient(batch.user, gP, d),
        userBias: dedupeSparseGradient(batch.user, gBu, 1),
      },
      dense: { mean: gMu },
    };
  }

  predict(_tf: Tf, batch: RatingsWithHistory, params: GatheredParams): Float32Array {
    if (batch.user.length === 0) return new Float32Array(0);
    return biasedDotPredict(this.#kernelInputs(batch, params));
  }
}

registerModel({
  name: 'svdpp',
  description: "SVD++: μ + b_u + b_i + q_i·(p_u + |N(u)|^-½ Σ y_j), implicit factors from the user's training items, MSE",
  defaults: { numUsers: 0, numItems: 0, dim: 16, initStd: 0.1, reg: 0.05, globalMean: 0 },
  // Tuned on synthetic tiny (perUser 60), batch 64: test RMSE 0.84 vs 0.99 for the global mean.
  // Per-example reg 0.05 as for MF (docs/MODELS.md: synthetic:small RMSE 0.6102, the best grid point,
  // vs 0.6202 with the optimizer's per-batch l2 2e-4), so the recommended optimizer has no l2.
  recommended: { optimizer: { name: 'adam', lr: 0.01, l2: 0 }, batchSize: 1024, epochs: 10, earlyStop: { validation: 0.05, patience: 2, maxEpochs: 10 } },
  create: (h) =>
    new SvdPlusPlus({
      numUsers: numberHyper('svdpp', h, 'numUsers'),
      numItems: numberHyper('svdpp', h, 'numItems'),
      dim: numberHyper('svdpp', h, 'dim'),
      initStd: numberHyper('svdpp', h, 'initStd'),
      globalMean: numberHyper('svdpp', h, 'globalMean'),
      reg: regOf('svdpp', h.reg),
    }) as TrainableModel<unknown>,
});
