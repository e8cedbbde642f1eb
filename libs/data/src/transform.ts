// Transformations of encoded ratings: implicit feedback and min-count filters.
import { selectRows, countIds } from './columns.ts';
import type { IdMap } from './encoding.ts';
import { DataError } from './errors.ts';
import type { Ratings } from './types.ts';

export interface ImplicitOptions {
  /** Ratings >= threshold become 1. */
  readonly threshold: number;
  /** 'drop' (default) removes the others; 'zero' keeps them as explicit negatives with value 0. */
  readonly below?: 'drop' | 'zero';
}

export function toImplicit(r: Ratings, opts: ImplicitOptions): Ratings {
  if (!Number.isFinite(opts.threshold)) throw new DataError(`implicit threshold must be a number, got ${opts.threshold}`);
  if (opts.below === 'zero') {
    const rating = new Float32Array(r.length);
    for (let i = 0; i < r.length; i++) rating[i] = r.rating[i] >= opts.threshold ? 1 : 0;
    return { ...r, rating };
  }
  const keep: number[] = [];
  for (let i = 0; i < r.length; i++) if (r.rating[i] >= opts.threshold) keep.push(i);
  const out = selectRows(r, Int32Array.from(keep));
  out.rating.fill(1);
  return out;
}

export interface MinCountOptions {
  readonly minUserRatings?: number;
  readonly minItemRatings?: number;
}

export interface Filtered {
  readonly ratings: Ratings;
  readonly users?: IdMap;
  readonly items?: IdMap;
  readonly rounds: number;
}

/**
 * Drops users with fewer than minUserRatings and items with fewer than minItemRatings, repeating
 * until stable (dropping an item can push a user under the bar, and back) — the usual "k-core"
 * filter. Ids are re-encoded to stay contiguous; the id maps (if given) follow.
 */
export function filterMinCounts(r: Ratings, opts: MinCountOptions, maps: { users?: IdMap; items?: IdMap } = {}): Filtered {
  const minU = opts.minUserRatings ?? 0;
  const minI = opts.minItemRatings ?? 0;
  let cur = r;
  let rounds = 0;
  for (;;) {
    rounds++;
    const nu = countIds(cur.user);
    const ni = countIds(cur.item);
    const cu = new Int32Array(nu);
    const ci = new Int32Array(ni);
    for (let k = 0; k < cur.length; k++) {
      cu[cur.user[k]]++;
      ci[cur.item[k]]++;
    }
    const keep: number[] = [];
    for (let k = 0; k < cur.length; k++) if (cu[cur.user[k]] >= minU && ci[cur.item[k]] >= minI) keep.push(k);
    if (keep.length === cur.length) break;
    cur = selectRows(cur, Int32Array.from(keep));
  }
  // Re-encode ids contiguously.
  const nu = maps.users?.size ?? countIds(r.user);
  const ni = maps.items?.size ?? countIds(r.item);
  const keepU = new Uint8Array(nu);
  const keepI = new Uint8Array(ni);
  for (let k = 0; k < cur.length; k++) {
    keepU[cur.user[k]] = 1;
    keepI[cur.item[k]] = 1;
  }
  const remapIds = (keep: Uint8Array, map: IdMap | undefined): { remap: Int32Array; map?: IdMap } => {
    if (map !== undefined) return map.compact(keep);
    const remap = new Int32Array(keep.length).fill(-1);
    let next = 0;
    for (let i = 0; i < keep.length; i++) if (keep[i] === 1) remap[i] = next++;
    return { remap };
  };
  const u = remapIds(keepU, maps.users);
  const i = remapIds(keepI, maps.items);
  const user = cur.user.map((x) => u.remap[x]);
  const item = cur.item.map((x) => i.remap[x]);
  return {
    ratings: { ...cur, user, item },
    rounds,
    ...(u.map !== undefined ? { users: u.map } : {}),
    ...(i.map !== undefined ? { items: i.map } : {}),
  };
}
