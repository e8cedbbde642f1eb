// Growable typed-array columns: loaders append rows without JS arrays of objects, so a 20M-row
// file costs ~12-20 bytes a row instead of ~100.
import type { Ratings } from './types.ts';

type TypedCtor<T> = { new (n: number): T };

class Column<T extends Int32Array | Float32Array | Float64Array> {
  data: T;
  readonly #Ctor: TypedCtor<T>;
  constructor(Ctor: TypedCtor<T>, capacity: number) {
    this.#Ctor = Ctor;
    this.data = new Ctor(capacity);
  }
  grow(min: number): void {
    if (min <= this.data.length) return;
    const next = new this.#Ctor(Math.max(min, Math.ceil(this.data.length * 1.5) + 1024));
    (next as Int32Array).set(this.data as Int32Array);
    this.data = next;
  }
}

export class RatingsBuilder {
  #n = 0;
  readonly #user: Column<Int32Array>;
  readonly #item: Column<Int32Array>;
  readonly #rating: Column<Float32Array>;
  readonly #ts: Column<Float64Array> | undefined;

  constructor(withTimestamps: boolean, capacity = 1 << 16) {
    this.#user = new Column(Int32Array, capacity);
    this.#item = new Column(Int32Array, capacity);
    this.#rating = new Column(Float32Array, capacity);
    this.#ts = withTimestamps ? new Column(Float64Array, capacity) : undefined;
  }

  get length(): number {
    return this.#n;
  }

  push(user: number, item: number, rating: number, timestamp = 0): void {
    const i = this.#n++;
    if (i >= this.#user.data.length) {
      this.#user.grow(i + 1);
      this.#item.grow(i + 1);
      this.#rating.grow(i + 1);
      this.#ts?.grow(i + 1);
    }
    this.#user.data[i] = user;
    this.#item.data[i] = item;
    this.#rating.data[i] = rating;
    if (this.#ts !== undefined) this.#ts.data[i] = timestamp;
  }

  /** Trims to length (one copy) and hands out the columns. */
  build(): Ratings {
    const n = this.#n;
    return {
      user: this.#user.data.slice(0, n),
      item: this.#item.data.slice(0, n),
      rating: this.#rating.data.slice(0, n),
      ...(this.#ts !== undefined ? { timestamp: this.#ts.data.slice(0, n) } : {}),
      length: n,
    };
  }
}

/** Rows at the given indices, in that order. */
export function selectRows(r: Ratings, indices: Int32Array | readonly number[]): Ratings {
  const n = indices.length;
  const user = new Int32Array(n);
  const item = new Int32Array(n);
  const rating = new Float32Array(n);
  const ts = r.timestamp !== undefined ? new Float64Array(n) : undefined;
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    user[k] = r.user[i];
    item[k] = r.item[i];
    rating[k] = r.rating[i];
    if (ts !== undefined) ts[k] = (r.timestamp as Float64Array)[i];
  }
  return { user, item, rating, ...(ts !== undefined ? { timestamp: ts } : {}), length: n };
}

/** Row indices grouped by user: rows of user u are order[start[u] … start[u+1]). Counting sort, stable. */
export function groupByUser(r: Ratings, numUsers: number): { start: Int32Array; order: Int32Array } {
  const start = new Int32Array(numUsers + 1);
  for (let i = 0; i < r.length; i++) start[r.user[i] + 1]++;
  for (let u = 0; u < numUsers; u++) start[u + 1] += start[u];
  const fill = start.slice(0, numUsers);
  const order = new Int32Array(r.length);
  for (let i = 0; i < r.length; i++) order[fill[r.user[i]]++] = i;
  return { start, order };
}

/** 1 + the largest id in a column (0 when empty). */
export function countIds(col: Int32Array): number {
  let max = -1;
  for (let i = 0; i < col.length; i++) if (col[i] > max) max = col[i];
  return max + 1;
}
