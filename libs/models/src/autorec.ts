// AutoRec (Sedhain et al. 2015, "AutoRec: Autoencoders Meet Collaborative Filtering"): an
// autoencoder over a sparse row of ratings, trained on the observed entries only.
//   h = g(V·r + b)        (more hidden layers with `stacked`, dense)
//   r̂ = f(W·h + c)
// Item-based by default (I-AutoRec, the better one in the paper): a row is an item's ratings by
// users, so rowsAre = 'items' and the InteractionsBatch's `user` column holds ITEM ids and its
// `items` column holds USER ids. `by: 'user'` swaps them back (U-AutoRec).
//
// Both big matrices are embedding tables over columns, so a step touches only the batch's
// observed columns: V ('enc.w', rows = input columns) enters as an embedding bag
// V·r = Σ_j r_j V[j,:], and W, c ('dec.w', 'dec.b', rows = output columns) are read only at the
// observed columns the loss looks at. Both are computed outside TF.js (see nn.ts for why); TF.js
// runs the hidden stack and its gradient is taken with the output layer's gradient as dy.
//
// Loss of a batch of B rows (documented choice: per-row sums divided by B, so that weighting by
// count across ranks reproduces the single-process loss exactly):
//   (1/B) Σ_rows Σ_{j observed} [ (r̂_j − r_j)² + λ/2 (‖V_j‖²·kept_j + ‖W_j‖²) ]  +  λ/2 Σ_k ‖W_k‖²
// i.e. L2 on the table rows is charged per observed entry (rows touched, weighted by how often —
// the usual sparse-SGD form, and the only one that does not depend on how the batch was split);
// the dense inner weights W_k (stacked layers) are charged once per batch. Biases are not decayed.
import { readTidy, type Tf } from '@actorflow/engine';
import { Rng, deriveSeed, type InteractionsBatch } from '@actorflow/data';
import { bagBackward, bagForward, type SparseGradient } from '@actorflow/embeddings';
import { ModelError, uniqueSorted, type DenseSpec, type GatheredParams, type StepContext, type StepResult, type TableSpec, type TrainableModel } from './model.ts';
import { registerModel, type Hyper } from './registry.ts';
import {
  ACTIVATIONS,
  DEFAULT_CTX,
  activate,
  checkInteractions,
  checkRate,
  compactRows,
  dropoutScales,
  entryRows,
  glorot,
  hyperInt,
  hyperNum,
  hyperSizes,
  hyperStr,
  keptBags,
  needDense,
  needTable,
  positions,
  type Activation,
} from './nn.ts';

type Tensor = ReturnType<Tf['tensor']>;

export const OUTPUT_ACTIVATIONS = ['identity', 'sigmoid', 'relu'] as const;
export type OutputActivation = (typeof OUTPUT_ACTIVATIONS)[number];

export interface AutoRecOptions {
  readonly numUsers: number;
  readonly numItems: number;
  /** 'item' (default): a row is an item's ratings by users; 'user': a user's ratings of items. */
  readonly by: 'item' | 'user';
  /** Hidden layer sizes, first to last: the first is the bag's width, the rest are dense layers. */
  readonly hidden: readonly number[];
  readonly hiddenActivation: Activation;
  readonly outputActivation: OutputActivation;
  /** λ of the L2 term (see the header for what it is charged on). */
  readonly l2: number;
  /** Input dropout rate (masking noise, inverted scaling), 0 = plain AutoRec. */
  readonly denoise: number;
  /** The output bias starts here (identity output), and rows with no training ratings predict it. */
  readonly globalMean: number;
}

interface Forward {
  readonly n: number;
  /** n × hiddenLast */
  readonly h: Float32Array;
}

export class AutoRec implements TrainableModel<InteractionsBatch> {
  readonly name = 'autorec';
  readonly input = 'interactions' as const;
  readonly task = 'rating' as const;
  readonly rowsAre: 'users' | 'items';
  readonly #o: AutoRecOptions;
  readonly #numCols: number;
  readonly #numRows: number;

  constructor(o: AutoRecOptions) {
    if (!(o.numUsers > 0 && o.numItems > 0)) throw new ModelError(`autorec needs numUsers and numItems > 0, got ${o.numUsers} and ${o.numItems}`);
    if (o.by !== 'item' && o.by !== 'user') throw new ModelError(`autorec: by must be 'item' or 'user', got ${String(o.by)}`);
    if (o.hidden.length === 0 || o.hidden.some((h) => !Number.isInteger(h) || h < 1)) throw new ModelError(`autorec: hidden sizes must be positive integers, got [${o.hidden.join(', ')}]`);
    if (!(o.l2 >= 0)) throw new ModelError(`autorec: l2 must be >= 0, got ${o.l2}`);
    checkRate('autorec', 'denoise', o.denoise);
    this.#o = o;
    this.rowsAre = o.by === 'item' ? 'items' : 'users';
    this.#numCols = o.by === 'item' ? o.numUsers : o.numItems;
    this.#numRows = o.by === 'item' ? o.numItems : o.numUsers;
  }

  get options(): AutoRecOptions {
    return this.#o;
  }

  tableSpecs(): TableSpec[] {
    const { hidden, outputActivation, globalMean } = this.#o;
    const cols = this.#numCols;
    const last = hidden[hidden.length - 1];
    return [
      { name: 'dec.b', rows: cols, dim: 1, init: outputActivation === 'identity' ? { kind: 'constant', value: globalMean } : { kind: 'zeros' } },
      { name: 'dec.w', rows: cols, dim: last, init: glorot(last, cols) },
      { name: 'enc.w', rows: cols, dim: hidden[0], init: glorot(cols, hidden[0]) },
    ];
  }

  denseSpecs(): DenseSpec[] {
    const { hidden } = this.#o;
    const specs: DenseSpec[] = [{ name: 'enc.b', size: hidden[0], init: { kind: 'zeros' } }];
    for (let k = 1; k < hidden.length; k++) {
      specs.push({ name: `h${k}.w`, size: hidden[k - 1] * hidden[k], init: glorot(hidden[k - 1], hidden[k]) });
      specs.push({ name: `h${k}.b`, size: hidden[k], init: { kind: 'zeros' } });
    }
    return specs;
  }

  rowsFor(batch: InteractionsBatch): Record<string, Int32Array> {
    const cols = uniqueSorted(batch.items);
    return { 'enc.w': cols, 'dec.w': cols, 'dec.b': cols };
  }

  /** Rows `predictPairs(history, query)` reads: the history's columns in, the query's columns out. */
  rowsForPairs(history: InteractionsBatch, query: InteractionsBatch): Record<string, Int32Array> {
    const out = uniqueSorted(query.items);
    return { 'enc.w': uniqueSorted(history.items), 'dec.w': out, 'dec.b': out };
  }

  rowsForScoring(history: InteractionsBatch): Record<string, Int32Array> {
    const all = Int32Array.from({ length: this.#numCols }, (_, i) => i);
    return { 'enc.w': uniqueSorted(history.items), 'dec.w': all, 'dec.b': all };
  }

  /** Dense parameters of the hidden stack, in the order the TF.js function takes them. */
  #denseList(p: GatheredParams): Float32Array[] {
    const { hidden } = this.#o;
    const list = [needDense('autorec', p, 'enc.b', hidden[0])];
    for (let k = 1; k < hidden.length; k++) {
      list.push(needDense('autorec', p, `h${k}.w`, hidden[k - 1] * hidden[k]), needDense('autorec', p, `h${k}.b`, hidden[k]));
    }
    return list;
  }

  /** The hidden stack as a function of (bag output, dense params) for TF.js. */
  #stack(tf: Tf, n: number): (...t: Tensor[]) => Tensor {
    const { hidden, hiddenActivation: g } = this.#o;
    return (...t: Tensor[]) => {
      let h = activate(tf, tf.add(tf.reshape(t[0], [n, hidden[0]]), t[1]), g);
      for (let k = 1; k < hidden.length; k++) {
        const W = tf.reshape(t[2 * k], [hidden[k - 1], hidden[k]]);
        h = activate(tf, tf.add(tf.matMul(h, W), t[2 * k + 1]), g);
      }
      return h;
    };
  }

  #forward(tf: Tf, history: InteractionsBatch, p: GatheredParams, scales: Float32Array | undefined): { fw: Forward; X1: Float32Array; bags: ReturnType<typeof keptBags> } {
    const n = history.user.length;
    const bags = keptBags(history, scales);
    const X1 = bagForward(needTable('autorec', p, 'enc.w'), this.#o.hidden[0], bags.offsets, bags.ids, bags.weights);
    const dense = this.#denseList(p);
    const f = this.#stack(tf, n);
    const h = readTidy(tf, () => f(tf.tensor1d(X1), ...dense.map((d) => tf.tensor1d(d))));
    return { fw: { n, h }, X1, bags };
  }

  computeGradients(tf: Tf, batch: InteractionsBatch, params: GatheredParams, ctx: StepContext = DEFAULT_CTX): StepResult {
    const n = batch.user.length;
    if (n === 0) throw new ModelError('autorec: empty batch');
    checkInteractions('autorec', batch, this.#numCols);
    const { hidden, l2, denoise, outputActivation } = this.#o;
    const H0 = hidden[0];
    const HL = hidden[hidden.length - 1];
    const scales = denoise > 0 ? dropoutScales(batch.offsets, batch.user, denoise, (row) => new Rng(deriveSeed(ctx.seed, 'autorec', ctx.epoch, row))) : undefined;
    const { fw, X1, bags } = this.#forward(tf, batch, params, scales);
    const enc = needTable('autorec', params, 'enc.w');
    const dec = needTable('autorec', params, 'dec.w');
    const decB = needTable('autorec', params, 'dec.b');
    const dpos = positions(batch.items, dec.rows, 'dec.w');
    const bpos = positions(batch.items, decB.rows, 'dec.b');
    const rowOf = entryRows(batch.offsets);
    const E = batch.items.length;

    // Output layer over the observed entries, and its gradient (of the loss / n).
    const dh = new Float32Array(n * HL);
    const gW = new Float64Array(dec.rows.length * HL);
    const gWTouched = new Uint8Array(dec.rows.length);
    const gB = new Float64Array(decB.rows.length);
    const gBTouched = new Uint8Array(decB.rows.length);
    let sq = 0;
    let reg = 0;
    for (let e = 0; e < E; e++) {
      const k = rowOf[e];
      const wo = dpos[e] * HL;
      const ho = k * HL;
      let y = decB.values[bpos[e]];
      for (let d = 0; d < HL; d++) y += dec.values[wo + d] * fw.h[ho + d];
      const [yhat, dyhat] = outAct(outputActivation, y);
      const err = yhat - batch.values[e];
      sq += err * err;
      const dy = (2 * err * dyhat) / n;
      gB[bpos[e]] += dy;
      gBTouched[bpos[e]] = 1;
      gWTouched[dpos[e]] = 1;
      for (let d = 0; d < HL; d++) {
        const wv = dec.values[wo + d];
        dh[ho + d] += dy * wv;
        gW[wo + d] += dy * fw.h[ho + d] + (l2 * wv) / n;
        reg += wv * wv;
      }
    }

    // Hidden stack: TF.js gradient with dh as the upstream gradient.
    const dense = this.#denseList(params);
    const f = this.#stack(tf, n);
    const grads = readTidy(tf, () => tf.grads(f)([tf.tensor1d(X1), ...dense.map((d) => tf.tensor1d(d))], tf.tensor2d(dh, [n, HL])));

    // Bag backward, plus L2 on the input rows once per kept entry.
    const gV = bagBackward(grads[0], H0, bags.offsets, bags.ids, bags.weights);
    if (l2 > 0) {
      const vpos = positions(bags.ids, enc.rows, 'enc.w');
      const gpos = positions(bags.ids, gV.rows, 'enc.w');
      for (let j = 0; j < bags.ids.length; j++) {
        const vo = vpos[j] * H0;
        const go = gpos[j] * H0;
        for (let d = 0; d < H0; d++) {
          const vv = enc.values[vo + d];
          gV.values[go + d] += (l2 * vv) / n;
          reg += vv * vv;
        }
      }
    }

    const denseGrads: Record<string, Float32Array> = { 'enc.b': grads[1] };
    let denseReg = 0;
    for (let k = 1; k < hidden.length; k++) {
      const W = dense[2 * k - 1];
      const g = grads[2 * k];
      for (let i = 0; i < W.length; i++) {
        g[i] += l2 * W[i];
        denseReg += W[i] * W[i];
      }
      denseGrads[`h${k}.w`] = g;
      denseGrads[`h${k}.b`] = grads[2 * k + 1];
    }
    const sparse: Record<string, SparseGradient> = {
      'dec.b': compactRows(gB, gBTouched, decB.rows, 1),
      'dec.w': compactRows(gW, gWTouched, dec.rows, HL),
      'enc.w': gV,
    };
    return { loss: (sq + (l2 / 2) * reg) / n + (l2 / 2) * denseReg, count: n, sparse, dense: denseGrads };
  }

  /**
   * Predicted ratings at the `query` entries, with the `history` rows (the rows' TRAINING vectors)
   * as input: query row k must be history row k (same ids, same order). Item-based: a row is an
   * item, a column a user, so the predicted rating of (user u, item i) is row i, column u.
   * Returns one value per query entry, in CSR order. Rows with no history predict globalMean.
   */
  predictPairs(tf: Tf, history: InteractionsBatch, query: InteractionsBatch, params: GatheredParams): Float32Array {
    checkInteractions('autorec', history, this.#numCols, 'history');
    checkInteractions('autorec', query, this.#numCols, 'query');
    if (history.user.length !== query.user.length || history.user.some((u, k) => u !== query.user[k])) {
      throw new ModelError('autorec: predictPairs needs the same rows (ids, order) in history and query');
    }
    const n = query.user.length;
    const out = new Float32Array(query.items.length);
    if (n === 0) return out;
    const HL = this.#o.hidden[this.#o.hidden.length - 1];
    const { fw } = this.#forward(tf, history, params, undefined);
    const dec = needTable('autorec', params, 'dec.w');
    const decB = needTable('autorec', params, 'dec.b');
    const dpos = positions(query.items, dec.rows, 'dec.w');
    const bpos = positions(query.items, decB.rows, 'dec.b');
    for (let k = 0; k < n; k++) {
      const empty = history.offsets[k + 1] === history.offsets[k];
      for (let e = query.offsets[k]; e < query.offsets[k + 1]; e++) {
        if (empty) {
          out[e] = this.#o.globalMean;
          continue;
        }
        let y = decB.values[bpos[e]];
        const wo = dpos[e] * HL;
        for (let d = 0; d < HL; d++) y += dec.values[wo + d] * fw.h[k * HL + d];
        out[e] = outAct(this.#o.outputActivation, y)[0];
      }
    }
    return out;
  }

  /** Reconstruction of the batch's own observed entries (no dropout), in CSR order. */
  predict(tf: Tf, batch: InteractionsBatch, params: GatheredParams): Float32Array {
    return this.predictPairs(tf, batch, batch, params);
  }

  /**
   * User-based only: every item's predicted rating for each history row (n × numItems). Item-based
   * AutoRec cannot score a user's items from that user's history (each item is its own input row):
   * use predictPairs with the items' rows instead.
   */
  scoreItems(tf: Tf, history: InteractionsBatch, params: GatheredParams): Float32Array {
    if (this.#o.by !== 'user') throw new ModelError("autorec: scoreItems needs by: 'user' (item-based rows are items; use predictPairs)");
    checkInteractions('autorec', history, this.#numCols, 'history');
    const n = history.user.length;
    const cols = this.#numCols;
    const HL = this.#o.hidden[this.#o.hidden.length - 1];
    if (n === 0) return new Float32Array(0);
    const { fw } = this.#forward(tf, history, params, undefined);
    const dec = needTable('autorec', params, 'dec.w');
    const decB = needTable('autorec', params, 'dec.b');
    if (dec.rows.length !== cols || decB.rows.length !== cols) throw new ModelError('autorec: scoreItems needs every dec.w/dec.b row gathered (use rowsForScoring)');
    const act = this.#o.outputActivation;
    const scores = readTidy(tf, () => {
      const y = tf.add(tf.matMul(tf.tensor2d(fw.h, [n, HL]), tf.tensor2d(dec.values, [cols, HL]), false, true), tf.tensor1d(decB.values));
      return act === 'identity' ? y : act === 'sigmoid' ? tf.sigmoid(y) : tf.relu(y);
    });
    for (let k = 0; k < n; k++) if (history.offsets[k + 1] === history.offsets[k]) scores.fill(this.#o.globalMean, k * cols, (k + 1) * cols);
    return scores;
  }

  /** Number of rows (items when item-based) — the id range of a batch's `user` column. */
  get numRows(): number {
    return this.#numRows;
  }
}

/** Output activation and its derivative at y. */
function outAct(a: OutputActivation, y: number): [number, number] {
  if (a === 'identity') return [y, 1];
  if (a === 'relu') return y > 0 ? [y, 1] : [0, 0];
  const s = 1 / (1 + Math.exp(-y));
  return [s, s * (1 - s)];
}

export function autoRecFromHyper(h: Hyper): AutoRec {
  const M = 'autorec';
  return new AutoRec({
    numUsers: hyperNum(M, h, 'numUsers'),
    numItems: hyperNum(M, h, 'numItems'),
    by: hyperStr(M, h, 'by', ['item', 'user'] as const),
    hidden: [hyperInt(M, h, 'hidden', 1), ...hyperSizes(M, h, 'stacked')],
    hiddenActivation: hyperStr(M, h, 'hiddenActivation', ACTIVATIONS),
    outputActivation: hyperStr(M, h, 'outputActivation', OUTPUT_ACTIVATIONS),
    l2: hyperNum(M, h, 'l2'),
    denoise: hyperNum(M, h, 'denoise'),
    globalMean: hyperNum(M, h, 'globalMean'),
  });
}

registerModel({
  name: 'autorec',
  description: 'AutoRec (Sedhain et al. 2015): item-based autoencoder over rating rows, loss on observed entries; rows are items unless by=user',
  // stacked: sizes of more hidden layers after `hidden`, e.g. "250,500" (dense layers).
  defaults: { numUsers: 0, numItems: 0, by: 'item', hidden: 500, stacked: '', hiddenActivation: 'sigmoid', outputActivation: 'identity', l2: 0.5, denoise: 0, globalMean: 0 },
  input: 'interactions',
  recommended: { optimizer: { name: 'adam', lr: 0.003 }, batchSize: 32, epochs: 20 },
  create: (h) => autoRecFromHyper(h) as TrainableModel<unknown>,
});
