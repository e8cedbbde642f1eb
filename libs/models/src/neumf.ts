// NeuMF (He et al. 2017, "Neural Collaborative Filtering") for implicit feedback: a GMF tower
// (user ⊙ item embeddings) and an MLP tower (its own user ‖ item embeddings → ReLU layers),
// concatenated → one logit; binary cross-entropy over each positive and `negatives` sampled items.
//
// Every rating in a batch is a positive. Negatives are drawn per example from
// Rng(deriveSeed(seed, 'neg', epoch, user, item)), uniformly over the items the user has not
// interacted with (the batch's `history`; without it only the positive itself is excluded), so
// they do not depend on how a batch is split across ranks. rowsFor has no step context, so it
// cannot know the negatives: it gathers every item row (correct for any negatives; fine for
// catalogues of thousands of items). `rowsFor(batch, ctx)` gathers only the rows the step will
// read — strategies that pass the context get the small pull.
import { readTidy, type Tf } from '@actorflow/engine';
import { dedupeSparseGradient } from '@actorflow/embeddings';
import { Rng, deriveSeed, type InteractionsBatch } from '@actorflow/data';
import {
  ModelError,
  perExample,
  uniqueSorted,
  type DenseSpec,
  type GatheredParams,
  type RatingsWithHistory,
  type StepContext,
  type StepResult,
  type TableSpec,
  type TrainableModel,
  lossAndGrads,
} from './model.ts';
import { registerModel } from './registry.ts';
import { denseOf, mlpForward, mlpSpecs, mlpTensors, needTable, numberHyper, parseLayers } from './ncf.ts';

type Tensor = ReturnType<Tf['tensor']>;
type Tensor2D = ReturnType<Tf['tensor2d']>;

const DEFAULT_CTX: StepContext = { seed: 0, epoch: 0, step: 0 };
/** Pairs scored per chunk in scoreItems (bounds the n × items × layer activations). */
const SCORE_PAIRS = 1 << 16;

export interface NeuMfOptions {
  readonly numUsers: number;
  readonly numItems: number;
  /** GMF embedding size (the GMF tower's predictive factors). */
  readonly dim: number;
  /** MLP embedding size of users and of items (MLP input 2·mlpDim). */
  readonly mlpDim: number;
  readonly layers: readonly number[];
  /** Sampled negatives per positive. */
  readonly negatives: number;
  readonly initStd: number;
}

export class NeuMf implements TrainableModel<RatingsWithHistory> {
  readonly name = 'neumf';
  readonly input = 'ratings';
  readonly task = 'ranking';
  readonly needsHistory = true;
  readonly #o: NeuMfOptions;
  readonly #mlp: DenseSpec[];
  readonly #head: DenseSpec[];

  constructor(o: NeuMfOptions) {
    if (!(o.numUsers > 0 && o.numItems > 0)) throw new ModelError(`neumf needs numUsers and numItems > 0, got ${o.numUsers} and ${o.numItems}`);
    for (const k of ['dim', 'mlpDim'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) throw new ModelError(`neumf ${k} must be a positive integer, got ${o[k]}`);
    if (!Number.isInteger(o.negatives) || o.negatives < 0) throw new ModelError(`neumf negatives must be an integer >= 0, got ${o.negatives}`);
    if (o.layers.length === 0) throw new ModelError('neumf needs at least one MLP layer');
    this.#o = o;
    this.#mlp = mlpSpecs('neumf', 2 * o.mlpDim, o.layers);
    const fan = o.dim + o.layers[o.layers.length - 1];
    this.#head = [
      { name: 'neumf.out.w', size: fan, init: { kind: 'uniform', scale: Math.sqrt(6 / (fan + 1)) } },
      { name: 'neumf.out.b', size: 1, init: { kind: 'zeros' } },
    ];
  }

  tableSpecs(): TableSpec[] {
    const { numUsers, numItems, dim, mlpDim, initStd } = this.#o;
    const init = { kind: 'normal', std: initStd } as const;
    return [
      { name: 'gmfItem', rows: numItems, dim, init },
      { name: 'gmfUser', rows: numUsers, dim, init },
      { name: 'mlpItem', rows: numItems, dim: mlpDim, init },
      { name: 'mlpUser', rows: numUsers, dim: mlpDim, init },
    ];
  }

  denseSpecs(): DenseSpec[] {
    return [...this.#mlp, ...this.#head];
  }

  /**
   * The examples of a step: each positive (label 1) followed by its negatives (label 0). Sampling
   * is by rejection against the user's history; a user who has every item gets no negatives.
   */
  pairs(batch: RatingsWithHistory, ctx: StepContext = DEFAULT_CTX): { user: Int32Array; item: Int32Array; label: Float32Array } {
    const { negatives, numItems } = this.#o;
    const n = batch.user.length;
    const user: number[] = [];
    const item: number[] = [];
    const label: number[] = [];
    const seen = historySets(batch.history);
    for (let i = 0; i < n; i++) {
      const u = batch.user[i];
      const pos = batch.item[i];
      user.push(u);
      item.push(pos);
      label.push(1);
      const excluded = seen.get(u) ?? new Set<number>();
      const available = numItems - excluded.size - (excluded.has(pos) ? 0 : 1);
      if (available <= 0 || negatives === 0) continue;
      const rng = new Rng(deriveSeed(ctx.seed, 'neg', ctx.epoch, u, pos));
      for (let s = 0; s < negatives; s++) {
        let j: number;
        do j = rng.nextInt(numItems);
        while (j === pos || excluded.has(j));
        user.push(u);
        item.push(j);
        label.push(0);
      }
    }
    return { user: Int32Array.from(user), item: Int32Array.from(item), label: Float32Array.from(label) };
  }

  rowsFor(batch: RatingsWithHistory, ctx?: StepContext): Record<string, Int32Array> {
    const users = uniqueSorted(batch.user);
    const items = ctx === undefined ? allItems(this.#o.numItems) : uniqueSorted(this.pairs(batch, ctx).item);
    return { gmfUser: users, mlpUser: users, gmfItem: items, mlpItem: items };
  }

  /** Tensors [gU, gI, mU, mI, w0, b0, …, outW, outB] for these pairs. */
  #tensors(tf: Tf, user: Int32Array, item: Int32Array, p: GatheredParams): Tensor[] {
    const n = user.length;
    const { dim, mlpDim, layers } = this.#o;
    const [outW, outB] = denseOf('neumf', p, this.#head);
    return [
      tf.tensor2d(perExample(user, needTable('neumf', p, 'gmfUser'), dim, 'gmfUser'), [n, dim]),
      tf.tensor2d(perExample(item, needTable('neumf', p, 'gmfItem'), dim, 'gmfItem'), [n, dim]),
      tf.tensor2d(perExample(user, needTable('neumf', p, 'mlpUser'), mlpDim, 'mlpUser'), [n, mlpDim]),
      tf.tensor2d(perExample(item, needTable('neumf', p, 'mlpItem'), mlpDim, 'mlpItem'), [n, mlpDim]),
      ...mlpTensors(tf, 2 * mlpDim, layers, denseOf('neumf', p, this.#mlp)),
      tf.tensor2d(outW, [outW.length, 1]),
      tf.scalar(outB[0]),
    ];
  }

  /** Logits of the pairs. */
  #forward(tf: Tf, t: readonly Tensor[]): Tensor {
    const k = t.length;
    const gmf = tf.mul(t[0], t[1]) as Tensor2D;
    const mlp = mlpForward(tf, tf.concat([t[2] as Tensor2D, t[3] as Tensor2D], 1), t.slice(4, k - 2));
    return tf.add(tf.reshape(tf.matMul(tf.concat([gmf, mlp], 1), t[k - 2] as Tensor2D), [-1]), t[k - 1]);
  }

  computeGradients(tf: Tf, batch: RatingsWithHistory, params: GatheredParams, ctx: StepContext = DEFAULT_CTX): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('neumf: empty batch');
    const pr = this.pairs(batch, ctx);
    const out = lossAndGrads(
      readTidy(tf, () => {
        const inputs = this.#tensors(tf, pr.user, pr.item, params);
        const y = tf.tensor1d(pr.label);
        // Mean binary cross-entropy over positives and negatives, on logits (numerically stable).
        const f = (...t: Tensor[]) => tf.losses.sigmoidCrossEntropy(y, this.#forward(tf, t)) as ReturnType<Tf['scalar']>;
        const { value, grads } = tf.valueAndGrads(f)(inputs);
        return [value, ...grads];
      }),
    );
    const { dim, mlpDim } = this.#o;
    const names = this.denseSpecs().map((s) => s.name);
    return {
      loss: out.loss,
      count: n,
      sparse: {
        gmfItem: dedupeSparseGradient(pr.item, out.g[1], dim),
        gmfUser: dedupeSparseGradient(pr.user, out.g[0], dim),
        mlpItem: dedupeSparseGradient(pr.item, out.g[3], mlpDim),
        mlpUser: dedupeSparseGradient(pr.user, out.g[2], mlpDim),
      },
      dense: Object.fromEntries(names.map((name, k) => [name, out.g[4 + k]])),
    };
  }

  /** Logits of the batch's (user, item) pairs (higher = more likely an interaction). */
  predict(tf: Tf, batch: RatingsWithHistory, params: GatheredParams): Float32Array {
    if (batch.user.length === 0) return new Float32Array(0);
    return readTidy(tf, () => this.#forward(tf, this.#tensors(tf, batch.user, batch.item, params)));
  }

  rowsForScoring(history: InteractionsBatch): Record<string, Int32Array> {
    const users = uniqueSorted(history.user);
    const items = allItems(this.#o.numItems);
    return { gmfUser: users, mlpUser: users, gmfItem: items, mlpItem: items };
  }

  /** n × numItems logits, in chunks of items so at most SCORE_PAIRS pairs go through the MLP at once. */
  scoreItems(tf: Tf, history: InteractionsBatch, params: GatheredParams): Float32Array {
    const n = history.user.length;
    const m = this.#o.numItems;
    const out = new Float32Array(n * m);
    if (n === 0) return out;
    const chunk = Math.max(1, Math.floor(SCORE_PAIRS / n));
    for (let start = 0; start < m; start += chunk) {
      const c = Math.min(chunk, m - start);
      // Pairs user-major: (u0, i0), (u0, i1), …, so row k of the result is user k's chunk.
      const user = new Int32Array(n * c);
      const item = new Int32Array(n * c);
      for (let k = 0; k < n; k++) {
        for (let j = 0; j < c; j++) {
          user[k * c + j] = history.user[k];
          item[k * c + j] = start + j;
        }
      }
      const logits = readTidy(tf, () => this.#forward(tf, this.#tensors(tf, user, item, params)));
      for (let k = 0; k < n; k++) out.set(logits.subarray(k * c, (k + 1) * c), k * m + start);
    }
    return out;
  }
}

function allItems(numItems: number): Int32Array {
  return Int32Array.from({ length: numItems }, (_, i) => i);
}

function historySets(history: InteractionsBatch | undefined): Map<number, Set<number>> {
  const out = new Map<number, Set<number>>();
  if (history === undefined) return out;
  for (let k = 0; k < history.user.length; k++) out.set(history.user[k], new Set(history.items.subarray(history.offsets[k], history.offsets[k + 1])));
  return out;
}

registerModel({
  name: 'neumf',
  description: 'NeuMF (implicit): GMF (user ⊙ item) ‖ MLP ([user ‖ item] → layers "64,32,16") → logit; BCE with sampled negatives',
  defaults: { numUsers: 0, numItems: 0, dim: 16, mlpDim: 32, layers: '64,32,16', negatives: 4, initStd: 0.01 },
  recommended: { optimizer: { name: 'adam', lr: 0.002 }, batchSize: 256, epochs: 5 },
  create: (h) =>
    new NeuMf({
      numUsers: numberHyper('neumf', h, 'numUsers'),
      numItems: numberHyper('neumf', h, 'numItems'),
      dim: numberHyper('neumf', h, 'dim'),
      mlpDim: numberHyper('neumf', h, 'mlpDim'),
      layers: parseLayers('neumf', h.layers),
      negatives: numberHyper('neumf', h, 'negatives'),
      initStd: numberHyper('neumf', h, 'initStd'),
    }) as TrainableModel<unknown>,
});
