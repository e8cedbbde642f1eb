// Partitioning a dataset over K data shards.
import { selectRows } from './columns.ts';
import { DataError } from './errors.ts';
import { hash32 } from './random.ts';
import type { Ratings } from './types.ts';

/** Shard of an id: a stable hash, identical on every machine. */
export function shardOf(id: number, shards: number): number {
  return hash32(id) % shards;
}

function checkShards(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new DataError(`number of shards must be a positive integer, got ${k}`);
}

/** All of a user's ratings in one shard (needed by per-user models such as autoencoders). */
export function shardByUser(r: Ratings, shards: number): Ratings[] {
  checkShards(shards);
  return split(r, shards, (i) => shardOf(r.user[i], shards));
}

/** Rows spread by a hash of the row index: even sizes. */
export function shardByRow(r: Ratings, shards: number): Ratings[] {
  checkShards(shards);
  return split(r, shards, (i) => shardOf(i, shards));
}

/** Only shard `index` of `shards` (without building the others). */
export function takeShard(r: Ratings, index: number, shards: number, by: 'user' | 'row' = 'row'): Ratings {
  checkShards(shards);
  if (!Number.isInteger(index) || index < 0 || index >= shards) throw new DataError(`shard index must be 0…${shards - 1}, got ${index}`);
  const rows: number[] = [];
  for (let i = 0; i < r.length; i++) if (shardOf(by === 'user' ? r.user[i] : i, shards) === index) rows.push(i);
  return selectRows(r, Int32Array.from(rows));
}

function split(r: Ratings, shards: number, shardOfRow: (i: number) => number): Ratings[] {
  const buckets: number[][] = Array.from({ length: shards }, () => []);
  for (let i = 0; i < r.length; i++) buckets[shardOfRow(i)].push(i);
  return buckets.map((b) => selectRows(r, Int32Array.from(b)));
}
