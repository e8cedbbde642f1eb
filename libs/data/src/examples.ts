// Examples of every kind a model trains on, behind one shape: a set you can count, shard and cut
// into batches by row index. Ratings models take rating rows; autoencoders take one row per user
// (or per item) in CSR form; image models take images. Epochs, sharding and the data shards work
// on row indices, so they are the same code for every kind.
import { DataError } from './errors.ts';
import type { ImageSet } from './mnist.ts';
import { takeBatch } from './epochs.ts';
import { sortedIndexOf } from './search.ts';
import { shardOf } from './sharding.ts';
import type { ImageBatch, InteractionsBatch, Ratings, RatingsBatch } from './types.ts';

/** `user-rows`: one row per user (its items); `item-rows`: one row per item (its users). */
export type ExampleKind = 'ratings' | 'user-rows' | 'item-rows' | 'images';
export const EXAMPLE_KINDS: readonly ExampleKind[] = ['ratings', 'user-rows', 'item-rows', 'images'];

export type ExampleSet =
  { readonly kind: 'ratings'; readonly ratings: Ratings } | { readonly kind: 'user-rows' | 'item-rows'; readonly rows: InteractionsBatch } | { readonly kind: 'images'; readonly images: ImageSet };

export type AnyBatch = RatingsBatch | InteractionsBatch | ImageBatch;

export function exampleCount(set: ExampleSet): number {
  switch (set.kind) {
    case 'ratings':
      return set.ratings.length;
    case 'images':
      return set.images.n;
    default:
      return set.rows.user.length;
  }
}

/** Examples in a batch of any kind. */
export function batchLength(b: AnyBatch): number {
  return 'label' in b ? b.label.length : b.user.length;
}

/** Rows (row indices into the set) as a batch. */
export function takeExamples(set: ExampleSet, idx: Int32Array): AnyBatch {
  switch (set.kind) {
    case 'ratings':
      return takeBatch(set.ratings, idx);
    case 'images':
      return takeImages(set.images, idx);
    default:
      return takeRows(set.rows, idx);
  }
}

export function takeImages(set: ImageSet, idx: Int32Array): ImageBatch {
  const px = set.pixels.length / Math.max(1, set.n);
  const pixels = new Float32Array(idx.length * px);
  const label = new Int32Array(idx.length);
  idx.forEach((i, k) => {
    pixels.set(set.pixels.subarray(i * px, (i + 1) * px), k * px);
    label[k] = set.labels[i];
  });
  return { pixels, label };
}

/** CSR rows at the given positions (positions into `rows.user`, not ids). */
export function takeRows(rows: InteractionsBatch, idx: Int32Array): InteractionsBatch {
  let nnz = 0;
  for (const i of idx) nnz += rows.offsets[i + 1] - rows.offsets[i];
  const user = new Int32Array(idx.length);
  const offsets = new Int32Array(idx.length + 1);
  const items = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  let o = 0;
  idx.forEach((i, k) => {
    const a = rows.offsets[i];
    const b = rows.offsets[i + 1];
    user[k] = rows.user[i];
    items.set(rows.items.subarray(a, b), o);
    values.set(rows.values.subarray(a, b), o);
    o += b - a;
    offsets[k + 1] = o;
  });
  return { user, offsets, items, values };
}

/**
 * Ratings grouped into CSR rows, one per user (`by: 'user'`) or per item, rows sorted by id and
 * each row's columns sorted. Ids with no ratings get no row. Counting sort: O(n + ids).
 */
export function groupRows(r: Ratings, by: 'user' | 'item'): InteractionsBatch {
  const key = by === 'user' ? r.user : r.item;
  const col = by === 'user' ? r.item : r.user;
  let maxKey = -1;
  for (let i = 0; i < r.length; i++) if (key[i] > maxKey) maxKey = key[i];
  const start = new Int32Array(maxKey + 2);
  for (let i = 0; i < r.length; i++) start[key[i] + 1]++;
  for (let u = 0; u <= maxKey; u++) start[u + 1] += start[u];
  const fill = start.slice(0, maxKey + 1);
  const order = new Int32Array(r.length);
  for (let i = 0; i < r.length; i++) order[fill[key[i]]++] = i;
  let rowsWithData = 0;
  for (let u = 0; u <= maxKey; u++) if (start[u + 1] > start[u]) rowsWithData++;
  const user = new Int32Array(rowsWithData);
  const offsets = new Int32Array(rowsWithData + 1);
  const items = new Int32Array(r.length);
  const values = new Float32Array(r.length);
  let k = 0;
  for (let u = 0; u <= maxKey; u++) {
    const a = start[u];
    const b = start[u + 1];
    if (b === a) continue;
    // Sort the row's columns (with their values) so consumers can binary-search them.
    const seg = Array.from(order.subarray(a, b)).sort((x, y) => col[x] - col[y]);
    seg.forEach((i, j) => {
      items[a + j] = col[i];
      values[a + j] = r.rating[i];
    });
    user[k] = u;
    offsets[++k] = b;
  }
  return { user, offsets, items, values };
}

/** The rows of `rows` whose ids are in `ids` (sorted ascending); ids without a row get an empty row. */
export function rowsForIds(rows: InteractionsBatch, ids: Int32Array): InteractionsBatch {
  const pos = new Int32Array(ids.length);
  const empty = rows.user.length;
  ids.forEach((id, k) => {
    const at = sortedIndexOf(rows.user, id);
    pos[k] = at >= 0 ? at : empty;
  });
  // An extra empty row at position `empty` stands for ids without data.
  const padded: InteractionsBatch = {
    user: Int32Array.from([...rows.user, -1]),
    offsets: Int32Array.from([...rows.offsets, rows.offsets[rows.offsets.length - 1]]),
    items: rows.items,
    values: rows.values,
  };
  const out = takeRows(padded, pos);
  return { ...out, user: ids.slice() };
}

/** The example set of a kind built from ratings (rows) or images. */
export function exampleSet(kind: ExampleKind, data: { ratings?: Ratings; images?: ImageSet }, what = 'dataset'): ExampleSet {
  if (kind === 'images') {
    if (data.images === undefined) throw new DataError(`${what} has no images; image models need an image dataset such as mnist:bundled`);
    return { kind, images: data.images };
  }
  if (data.ratings === undefined) throw new DataError(`${what} has no ratings; '${kind}' examples need a ratings dataset`);
  if (kind === 'ratings') return { kind, ratings: data.ratings };
  return { kind, rows: groupRows(data.ratings, kind === 'user-rows' ? 'user' : 'item') };
}

/** Partition `index` of `shards` of a set: rating rows by row hash, user/item rows by id hash, images by index hash. */
export function shardExamples(set: ExampleSet, index: number, shards: number): ExampleSet {
  if (!Number.isInteger(shards) || shards < 1) throw new DataError(`number of shards must be a positive integer, got ${shards}`);
  if (!Number.isInteger(index) || index < 0 || index >= shards) throw new DataError(`shard index must be 0…${shards - 1}, got ${index}`);
  if (shards === 1) return set;
  const n = exampleCount(set);
  const keep: number[] = [];
  for (let i = 0; i < n; i++) {
    const key = set.kind === 'user-rows' || set.kind === 'item-rows' ? set.rows.user[i] : i;
    if (shardOf(key, shards) === index) keep.push(i);
  }
  const idx = Int32Array.from(keep);
  switch (set.kind) {
    case 'ratings': {
      const b = takeBatch(set.ratings, idx);
      return { kind: 'ratings', ratings: { ...b, length: idx.length } };
    }
    case 'images': {
      const b = takeImages(set.images, idx);
      return { kind: 'images', images: { pixels: b.pixels, labels: b.label, n: idx.length } };
    }
    default:
      return { kind: set.kind, rows: takeRows(set.rows, idx) };
  }
}
