// MNIST models: a small CNN classifier ('mnist-cnn') and a dense autoencoder ('mnist-ae'). Every
// weight is a DenseSpec (no tables): the strategies treat them like any other dense parameter.
//
// The convolution is computed as im2col + matMul rather than tf.conv2d: the wasm backend has no
// Conv2DBackpropFilter kernel (the gradient of a conv w.r.t. its filter), and since the conv is
// the first layer its patches are constants built from the pixels on typed arrays. matMul and
// maxPool (with MaxPoolGrad) run on both cpu and wasm, and on cpu this is also faster than conv2d.
import { readTidy, type Tf } from '@actorflow/engine';
import type { ImageBatch } from '@actorflow/data';
import { ModelError, type DenseSpec, type GatheredParams, type StepResult, type TrainableModel, lossAndGrads } from './model.ts';
import { registerModel, type Hyper } from './registry.ts';
import { glorot, he, hyperInt, needDense } from './nn.ts';

type Tensor = ReturnType<Tf['tensor']>;

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;

function imageCount(model: string, b: ImageBatch, needLabels: boolean): number {
  if (b.pixels.length % PIXELS !== 0) throw new ModelError(`${model}: pixels has ${b.pixels.length} values, not a multiple of ${PIXELS} (28×28 images)`);
  const n = b.pixels.length / PIXELS;
  if (needLabels) {
    if (b.label.length !== n) throw new ModelError(`${model}: ${n} images but ${b.label.length} labels`);
    for (let i = 0; i < n; i++) if (!(b.label[i] >= 0 && b.label[i] < CLASSES)) throw new ModelError(`${model}: label ${b.label[i]} of image ${i} is not a digit 0…9`);
  }
  return n;
}

export interface MnistCnnOptions {
  /** Convolution filters (3×3, valid padding, stride 1), default 32. */
  readonly filters: number;
  /** Width of the hidden dense layer, default 64. */
  readonly dense: number;
}

/** conv 3×3×filters ReLU → max-pool 2×2 → flatten → dense ReLU → dense 10 softmax; cross-entropy. */
export class MnistCnn implements TrainableModel<ImageBatch> {
  readonly name = 'mnist-cnn';
  readonly input = 'images' as const;
  readonly task = 'classification' as const;
  readonly #o: MnistCnnOptions;
  static readonly CONV_OUT = SIDE - 2; // 26
  static readonly POOL_OUT = (SIDE - 2) / 2; // 13

  constructor(o: MnistCnnOptions) {
    for (const [k, v] of Object.entries(o)) if (!Number.isInteger(v) || v < 1) throw new ModelError(`mnist-cnn: ${k} must be a positive integer, got ${String(v)}`);
    this.#o = o;
  }

  get #flat(): number {
    return MnistCnn.POOL_OUT * MnistCnn.POOL_OUT * this.#o.filters;
  }

  tableSpecs(): [] {
    return [];
  }

  denseSpecs(): DenseSpec[] {
    const { filters, dense } = this.#o;
    return [
      // Kernel [3, 3, 1, filters] row-major, i.e. a 9 × filters matrix over (ky, kx) patches.
      { name: 'conv.w', size: 9 * filters, init: he(9) },
      { name: 'conv.b', size: filters, init: { kind: 'zeros' } },
      { name: 'fc1.w', size: this.#flat * dense, init: he(this.#flat) },
      { name: 'fc1.b', size: dense, init: { kind: 'zeros' } },
      { name: 'fc2.w', size: dense * CLASSES, init: glorot(dense, CLASSES) },
      { name: 'fc2.b', size: CLASSES, init: { kind: 'zeros' } },
    ];
  }

  rowsFor(): Record<string, Int32Array> {
    return {};
  }

  #params(p: GatheredParams): Float32Array[] {
    const { filters, dense } = this.#o;
    const sizes: [string, number][] = [
      ['conv.w', 9 * filters],
      ['conv.b', filters],
      ['fc1.w', this.#flat * dense],
      ['fc1.b', dense],
      ['fc2.w', dense * CLASSES],
      ['fc2.b', CLASSES],
    ];
    return sizes.map(([name, size]) => needDense(this.name, p, name, size));
  }

  /** 3×3 patches of every valid position: (n·26·26) × 9, in (image, y, x) order. */
  static patches(pixels: Float32Array, n: number): Float32Array {
    const C = MnistCnn.CONV_OUT;
    const out = new Float32Array(n * C * C * 9);
    let o = 0;
    for (let i = 0; i < n; i++) {
      const base = i * PIXELS;
      for (let y = 0; y < C; y++) {
        for (let x = 0; x < C; x++) {
          for (let ky = 0; ky < 3; ky++) {
            const row = base + (y + ky) * SIDE + x;
            out[o++] = pixels[row];
            out[o++] = pixels[row + 1];
            out[o++] = pixels[row + 2];
          }
        }
      }
    }
    return out;
  }

  #logits(tf: Tf, n: number, P: Tensor): (...t: Tensor[]) => Tensor {
    const { filters, dense } = this.#o;
    const C = MnistCnn.CONV_OUT;
    return (...t: Tensor[]) => {
      const conv = tf.relu(tf.add(tf.matMul(P, tf.reshape(t[0], [9, filters])), t[1]));
      const pooled = tf.maxPool(tf.reshape(conv, [n, C, C, filters]) as ReturnType<Tf['tensor4d']>, 2, 2, 'valid');
      const h = tf.relu(tf.add(tf.matMul(tf.reshape(pooled, [n, this.#flat]), tf.reshape(t[2], [this.#flat, dense])), t[3]));
      return tf.add(tf.matMul(h, tf.reshape(t[4], [dense, CLASSES])), t[5]);
    };
  }

  computeGradients(tf: Tf, batch: ImageBatch, params: GatheredParams): StepResult {
    const n = imageCount(this.name, batch, true);
    if (n === 0) throw new ModelError('mnist-cnn: empty batch');
    const w = this.#params(params);
    const P = MnistCnn.patches(batch.pixels, n);
    const onehot = new Float32Array(n * CLASSES);
    for (let i = 0; i < n; i++) onehot[i * CLASSES + batch.label[i]] = 1;
    const out = lossAndGrads(
      readTidy(tf, () => {
        const logits = this.#logits(tf, n, tf.tensor2d(P, [n * MnistCnn.CONV_OUT * MnistCnn.CONV_OUT, 9]));
        const y = tf.tensor2d(onehot, [n, CLASSES]);
        const f = (...t: Tensor[]): Tensor => tf.div(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits(...t))))), tf.scalar(n));
        const { value, grads } = tf.valueAndGrads(f)(w.map((v) => tf.tensor1d(v)));
        return [value, ...grads];
      }),
    );
    const names = ['conv.w', 'conv.b', 'fc1.w', 'fc1.b', 'fc2.w', 'fc2.b'];
    return { loss: out.loss, count: n, sparse: {}, dense: Object.fromEntries(names.map((k, i) => [k, out.g[i]])) };
  }

  /** n × 10 class probabilities. */
  predict(tf: Tf, batch: ImageBatch, params: GatheredParams): Float32Array {
    const n = imageCount(this.name, batch, false);
    if (n === 0) return new Float32Array(0);
    const w = this.#params(params);
    const P = MnistCnn.patches(batch.pixels, n);
    return readTidy(tf, () => tf.softmax(this.#logits(tf, n, tf.tensor2d(P, [n * MnistCnn.CONV_OUT * MnistCnn.CONV_OUT, 9]))(...w.map((v) => tf.tensor1d(v)))));
  }
}

export interface MnistAeOptions {
  /** Code size, default 32. */
  readonly code: number;
}

/**
 * Dense autoencoder 784 → code ReLU → 784 sigmoid, binary cross-entropy averaged over pixels and
 * images (Keras' binary_crossentropy, so losses compare with the Keras tutorial's ~0.09–0.10).
 */
export class MnistAutoencoder implements TrainableModel<ImageBatch> {
  readonly name = 'mnist-ae';
  readonly input = 'images' as const;
  readonly task = 'reconstruction' as const;
  readonly #code: number;

  constructor(o: MnistAeOptions) {
    if (!Number.isInteger(o.code) || o.code < 1) throw new ModelError(`mnist-ae: code must be a positive integer, got ${o.code}`);
    this.#code = o.code;
  }

  tableSpecs(): [] {
    return [];
  }

  denseSpecs(): DenseSpec[] {
    const c = this.#code;
    return [
      { name: 'enc.w', size: PIXELS * c, init: glorot(PIXELS, c) },
      { name: 'enc.b', size: c, init: { kind: 'zeros' } },
      { name: 'dec.w', size: c * PIXELS, init: glorot(c, PIXELS) },
      { name: 'dec.b', size: PIXELS, init: { kind: 'zeros' } },
    ];
  }

  rowsFor(): Record<string, Int32Array> {
    return {};
  }

  #params(p: GatheredParams): Float32Array[] {
    const c = this.#code;
    return [needDense(this.name, p, 'enc.w', PIXELS * c), needDense(this.name, p, 'enc.b', c), needDense(this.name, p, 'dec.w', c * PIXELS), needDense(this.name, p, 'dec.b', PIXELS)];
  }

  #logits(tf: Tf, x: Tensor): (...t: Tensor[]) => Tensor {
    const c = this.#code;
    return (...t: Tensor[]) => {
      const h = tf.relu(tf.add(tf.matMul(x, tf.reshape(t[0], [PIXELS, c])), t[1]));
      return tf.add(tf.matMul(h, tf.reshape(t[2], [c, PIXELS])), t[3]);
    };
  }

  computeGradients(tf: Tf, batch: ImageBatch, params: GatheredParams): StepResult {
    const n = imageCount(this.name, batch, false);
    if (n === 0) throw new ModelError('mnist-ae: empty batch');
    const w = this.#params(params);
    const out = lossAndGrads(
      readTidy(tf, () => {
        const x = tf.tensor2d(batch.pixels, [n, PIXELS]);
        const logits = this.#logits(tf, x);
        // BCE from logits, stable form: max(z, 0) − z·x + log(1 + e^−|z|).
        const f = (...t: Tensor[]): Tensor => {
          const z = logits(...t);
          return tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, x)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))));
        };
        const { value, grads } = tf.valueAndGrads(f)(w.map((v) => tf.tensor1d(v)));
        return [value, ...grads];
      }),
    );
    return { loss: out.loss, count: n, sparse: {}, dense: { 'enc.w': out.g[0], 'enc.b': out.g[1], 'dec.w': out.g[2], 'dec.b': out.g[3] } };
  }

  /** n × 784 reconstructions in [0, 1]. */
  predict(tf: Tf, batch: ImageBatch, params: GatheredParams): Float32Array {
    const n = imageCount(this.name, batch, false);
    if (n === 0) return new Float32Array(0);
    const w = this.#params(params);
    return readTidy(tf, () => tf.sigmoid(this.#logits(tf, tf.tensor2d(batch.pixels, [n, PIXELS]))(...w.map((v) => tf.tensor1d(v)))));
  }
}

export const mnistCnnFromHyper = (h: Hyper): MnistCnn => new MnistCnn({ filters: hyperInt('mnist-cnn', h, 'filters', 1), dense: hyperInt('mnist-cnn', h, 'dense', 1) });
export const mnistAeFromHyper = (h: Hyper): MnistAutoencoder => new MnistAutoencoder({ code: hyperInt('mnist-ae', h, 'code', 1) });

registerModel({
  name: 'mnist-cnn',
  description: 'MNIST CNN: conv 3×3×32 ReLU → max-pool 2×2 → dense 64 ReLU → dense 10 softmax, cross-entropy',
  defaults: { filters: 32, dense: 64 },
  input: 'images',
  recommended: { optimizer: { name: 'adam', lr: 0.001 }, batchSize: 32, epochs: 7 },
  create: (h) => mnistCnnFromHyper(h) as TrainableModel<unknown>,
});

registerModel({
  name: 'mnist-ae',
  description: 'MNIST autoencoder: 784 → 32 ReLU → 784 sigmoid, binary cross-entropy (train with RMSprop)',
  defaults: { code: 32 },
  input: 'images',
  recommended: { optimizer: { name: 'rmsprop', lr: 0.001 }, batchSize: 256, epochs: 50 },
  create: (h) => mnistAeFromHyper(h) as TrainableModel<unknown>,
});
