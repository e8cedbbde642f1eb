// Mult-VAE and Mult-DAE (Liang, Krishnan, Hoffman, Jebara 2018, "Variational Autoencoders for
// Collaborative Filtering"): an autoencoder over a user's whole click row with a multinomial
// likelihood, scored by ranking.
//   x̃ = dropout(x / ‖x‖₂)                     (p = 0.5, inverted scaling, training only)
//   h = tanh(x̃·V + b)                          V = 'enc0.w', an embedding table over items (a bag)
//   VAE: [μ, log σ²] = h·W + b;  z = μ + ε ⊙ σ (training; z = μ at inference)
//   DAE: z = tanh(h·W + b)
//   π = softmax(tanh(z·W₁ + b₁)·W₂ + b₂)      the last layer is dense over all items (DenseSpec)
//   loss = −Σ_i x_i log π_i  +  β · KL(q(z|x) ‖ N(0, I)),   β = min(annealCap, step / totalAnnealSteps)
// averaged over the batch's users. Dropout masks and ε are drawn per user from
// deriveSeed(seed, 'vae' | 'vae-eps', epoch, user), so a batch split across ranks draws the same.
// L2 on the weights (the paper's λ) is the optimizer's `l2`.
import { readTidy, type Tf } from '@actorflow/engine';
import { Rng, deriveSeed, type InteractionsBatch } from '@actorflow/data';
import { bagBackward, bagForward } from '@actorflow/embeddings';
import { ModelError, uniqueSorted, type DenseSpec, type GatheredParams, type StepContext, type StepResult, type TableSpec, type TrainableModel, lossAndGrads } from './model.ts';
import { registerModel, type Hyper } from './registry.ts';
import {
  ACTIVATIONS,
  DEFAULT_CTX,
  activate,
  checkInteractions,
  checkRate,
  dropoutScales,
  glorot,
  hyperInt,
  hyperNum,
  hyperSizes,
  hyperStr,
  keptBags,
  needDense,
  needTable,
  type Activation,
} from './nn.ts';

type Tensor = ReturnType<Tf['tensor']>;

export interface MultVaeOptions {
  readonly numItems: number;
  /** Encoder hidden sizes (the first is the bag's width); the decoder mirrors them. Paper: [600]. */
  readonly hidden: readonly number[];
  /** Latent size (paper: 200). */
  readonly latent: number;
  /** Input dropout rate (paper: 0.5). */
  readonly dropout: number;
  readonly activation: Activation;
  /** true: Mult-VAE; false: Mult-DAE (no sampling, no KL, tanh on the code). */
  readonly variational: boolean;
  /** Largest KL weight β (paper: 0.2). */
  readonly annealCap: number;
  /** Steps over which β grows linearly from 0 (paper: 200 000). */
  readonly totalAnnealSteps: number;
}

interface Layer {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
}

export class MultVAE implements TrainableModel<InteractionsBatch> {
  readonly name: string;
  readonly input = 'interactions' as const;
  readonly task = 'ranking' as const;
  readonly rowsAre = 'users' as const;
  readonly #o: MultVaeOptions;
  /** Dense layers after the bag, in order: encoder, code, decoder (the last is over all items). */
  readonly #layers: readonly Layer[];
  readonly #encLayers: number;

  constructor(o: MultVaeOptions) {
    const name = o.variational ? 'multvae' : 'multdae';
    this.name = name;
    if (!Number.isInteger(o.numItems) || o.numItems < 1) throw new ModelError(`${name} needs numItems > 0, got ${o.numItems}`);
    if (o.hidden.length === 0 || o.hidden.some((h) => !Number.isInteger(h) || h < 1)) throw new ModelError(`${name}: hidden sizes must be positive integers, got [${o.hidden.join(', ')}]`);
    if (!Number.isInteger(o.latent) || o.latent < 1) throw new ModelError(`${name}: latent must be a positive integer, got ${o.latent}`);
    checkRate(name, 'dropout', o.dropout);
    if (o.variational && !(o.annealCap >= 0 && o.totalAnnealSteps > 0)) throw new ModelError(`${name}: annealCap must be >= 0 and totalAnnealSteps > 0, got ${o.annealCap} and ${o.totalAnnealSteps}`);
    this.#o = o;
    const layers: Layer[] = [];
    const { hidden, latent, numItems } = o;
    for (let k = 1; k < hidden.length; k++) layers.push({ name: `enc${k}`, rows: hidden[k - 1], cols: hidden[k] });
    layers.push({ name: `enc${hidden.length}`, rows: hidden[hidden.length - 1], cols: o.variational ? 2 * latent : latent });
    this.#encLayers = layers.length;
    const dec = [latent, ...[...hidden].reverse(), numItems];
    for (let k = 0; k + 1 < dec.length; k++) layers.push({ name: `dec${k}`, rows: dec[k], cols: dec[k + 1] });
    this.#layers = layers;
  }

  tableSpecs(): TableSpec[] {
    const { numItems, hidden } = this.#o;
    return [{ name: 'enc0.w', rows: numItems, dim: hidden[0], init: glorot(numItems, hidden[0]) }];
  }

  denseSpecs(): DenseSpec[] {
    const specs: DenseSpec[] = [{ name: 'enc0.b', size: this.#o.hidden[0], init: { kind: 'zeros' } }];
    for (const l of this.#layers) {
      specs.push({ name: `${l.name}.w`, size: l.rows * l.cols, init: glorot(l.rows, l.cols) });
      specs.push({ name: `${l.name}.b`, size: l.cols, init: { kind: 'zeros' } });
    }
    return specs;
  }

  rowsFor(batch: InteractionsBatch): Record<string, Int32Array> {
    return { 'enc0.w': uniqueSorted(batch.items) };
  }

  rowsForScoring(history: InteractionsBatch): Record<string, Int32Array> {
    return this.rowsFor(history);
  }

  /** KL weight at a step: min(annealCap, step / totalAnnealSteps). */
  beta(step: number): number {
    return Math.min(this.#o.annealCap, step / this.#o.totalAnnealSteps);
  }

  #dense(p: GatheredParams): Float32Array[] {
    const list = [needDense(this.name, p, 'enc0.b', this.#o.hidden[0])];
    for (const l of this.#layers) list.push(needDense(this.name, p, `${l.name}.w`, l.rows * l.cols), needDense(this.name, p, `${l.name}.b`, l.cols));
    return list;
  }

  /** 1/‖x‖₂ per row (0 for an empty row). */
  #inverseNorms(b: InteractionsBatch): Float32Array {
    const out = new Float32Array(b.user.length);
    for (let k = 0; k < out.length; k++) {
      let s = 0;
      for (let e = b.offsets[k]; e < b.offsets[k + 1]; e++) s += b.values[e] * b.values[e];
      out[k] = s > 0 ? 1 / Math.sqrt(s) : 0;
    }
    return out;
  }

  /**
   * The network after the bag, as a function of [X1, enc0.b, layer weights…]. With `eps` the code
   * is sampled (VAE training); returns logits (n × items) and the batch-mean KL (VAE) or 0.
   */
  #net(tf: Tf, n: number, eps: Tensor | undefined): (t: Tensor[]) => { logits: Tensor; kl: Tensor } {
    const { activation: g, latent, variational, hidden } = this.#o;
    return (t: Tensor[]) => {
      let h = activate(tf, tf.add(tf.reshape(t[0], [n, hidden[0]]), t[1]), g);
      let kl: Tensor = tf.scalar(0);
      this.#layers.forEach((l, i) => {
        const y = tf.add(tf.matMul(h, tf.reshape(t[2 + 2 * i], [l.rows, l.cols])), t[3 + 2 * i]);
        const last = i === this.#layers.length - 1;
        if (i === this.#encLayers - 1 && variational) {
          const mu = tf.slice(y, [0, 0], [n, latent]);
          const logvar = tf.slice(y, [0, latent], [n, latent]);
          // KL(N(μ, σ²) ‖ N(0, 1)) = ½ Σ (σ² + μ² − 1 − log σ²), averaged over users.
          kl = tf.div(tf.mul(tf.scalar(0.5), tf.sum(tf.sub(tf.add(tf.exp(logvar), tf.square(mu)), tf.add(logvar, tf.scalar(1))))), tf.scalar(n));
          h = eps === undefined ? mu : tf.add(mu, tf.mul(eps, tf.exp(tf.mul(tf.scalar(0.5), logvar))));
        } else h = last ? y : activate(tf, y, g);
      });
      return { logits: h, kl };
    };
  }

  computeGradients(tf: Tf, batch: InteractionsBatch, params: GatheredParams, ctx: StepContext = DEFAULT_CTX): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError(`${this.name}: empty batch`);
    const { numItems, hidden, latent, dropout, variational } = this.#o;
    checkInteractions(this.name, batch, numItems);
    const enc = needTable(this.name, params, 'enc0.w');
    const scales = dropout > 0 ? dropoutScales(batch.offsets, batch.user, dropout, (u) => new Rng(deriveSeed(ctx.seed, 'vae', ctx.epoch, u))) : undefined;
    const bags = keptBags(batch, scales, this.#inverseNorms(batch));
    const X1 = bagForward(enc, hidden[0], bags.offsets, bags.ids, bags.weights);
    const x = new Float32Array(n * numItems);
    for (let k = 0; k < n; k++) for (let e = batch.offsets[k]; e < batch.offsets[k + 1]; e++) x[k * numItems + batch.items[e]] += batch.values[e];
    let eps: Float32Array | undefined;
    if (variational) {
      eps = new Float32Array(n * latent);
      for (let k = 0; k < n; k++) {
        const rng = new Rng(deriveSeed(ctx.seed, 'vae-eps', ctx.epoch, batch.user[k]));
        for (let d = 0; d < latent; d++) eps[k * latent + d] = rng.normal();
      }
    }
    const beta = variational ? this.beta(ctx.step) : 0;
    const dense = this.#dense(params);
    const out = lossAndGrads(
      readTidy(tf, () => {
        const net = this.#net(tf, n, eps === undefined ? undefined : tf.tensor2d(eps, [n, latent]));
        const xt = tf.tensor2d(x, [n, numItems]);
        const f = (...t: Tensor[]): Tensor => {
          const { logits, kl } = net(t);
          const nll = tf.div(tf.neg(tf.sum(tf.mul(xt, tf.logSoftmax(logits)))), tf.scalar(n));
          return tf.add(nll, tf.mul(tf.scalar(beta), kl));
        };
        const { value, grads } = tf.valueAndGrads(f)([tf.tensor1d(X1), ...dense.map((d) => tf.tensor1d(d))]);
        return [value, ...grads];
      }),
    );
    const denseGrads: Record<string, Float32Array> = { 'enc0.b': out.g[1] };
    this.#layers.forEach((l, i) => {
      denseGrads[`${l.name}.w`] = out.g[2 + 2 * i];
      denseGrads[`${l.name}.b`] = out.g[3 + 2 * i];
    });
    return { loss: out.loss, count: n, sparse: { 'enc0.w': bagBackward(out.g[0], hidden[0], bags.offsets, bags.ids, bags.weights) }, dense: denseGrads };
  }

  /** Logits of every item for each user of `history` (n × numItems): no dropout, z = μ. */
  scoreItems(tf: Tf, history: InteractionsBatch, params: GatheredParams): Float32Array {
    const n = history.user.length;
    const { numItems, hidden } = this.#o;
    checkInteractions(this.name, history, numItems, 'history');
    if (n === 0) return new Float32Array(0);
    const bags = keptBags(history, undefined, this.#inverseNorms(history));
    const X1 = bagForward(needTable(this.name, params, 'enc0.w'), hidden[0], bags.offsets, bags.ids, bags.weights);
    const dense = this.#dense(params);
    return readTidy(tf, () => this.#net(tf, n, undefined)([tf.tensor1d(X1), ...dense.map((d) => tf.tensor1d(d))]).logits);
  }

  /** Same as scoreItems on the batch's rows (n × numItems logits). */
  predict(tf: Tf, batch: InteractionsBatch, params: GatheredParams): Float32Array {
    return this.scoreItems(tf, batch, params);
  }
}

function fromHyper(h: Hyper, variational: boolean): MultVAE {
  const M = variational ? 'multvae' : 'multdae';
  return new MultVAE({
    numItems: hyperNum(M, h, 'numItems'),
    hidden: hyperSizes(M, h, 'hidden'),
    latent: hyperInt(M, h, 'latent', 1),
    dropout: hyperNum(M, h, 'dropout'),
    activation: hyperStr(M, h, 'activation', ACTIVATIONS),
    variational,
    annealCap: variational ? hyperNum(M, h, 'annealCap') : 0,
    totalAnnealSteps: variational ? hyperNum(M, h, 'totalAnnealSteps') : 1,
  });
}

export const multVaeFromHyper = (h: Hyper): MultVAE => fromHyper(h, true);
export const multDaeFromHyper = (h: Hyper): MultVAE => fromHyper(h, false);

// Recommended: Adam lr 1e-3 as in the paper (3e-3 converges faster on small data), batch 100–500.
registerModel({
  name: 'multvae',
  description: 'Mult-VAE (Liang et al. 2018): variational autoencoder over click rows, multinomial likelihood, KL annealing; ranking',
  defaults: { numItems: 0, hidden: '600', latent: 200, dropout: 0.5, activation: 'tanh', annealCap: 0.2, totalAnnealSteps: 200000 },
  input: 'interactions',
  recommended: { optimizer: { name: 'adam', lr: 0.001 }, batchSize: 100, epochs: 50 },
  create: (h) => multVaeFromHyper(h) as TrainableModel<unknown>,
});

registerModel({
  name: 'multdae',
  description: 'Mult-DAE (Liang et al. 2018): denoising autoencoder over click rows, multinomial likelihood; ranking',
  defaults: { numItems: 0, hidden: '600', latent: 200, dropout: 0.5, activation: 'tanh' },
  input: 'interactions',
  recommended: { optimizer: { name: 'adam', lr: 0.001 }, batchSize: 100, epochs: 50 },
  create: (h) => multDaeFromHyper(h) as TrainableModel<unknown>,
});
