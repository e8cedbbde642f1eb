// Top-K selection over a row of scores. A catalogue row is 27k items (ML-20M) and evaluation
// asks for K ≤ 50, so a full sort (O(n log n), plus an index array per user) is wasted work: a
// bounded min-heap of K indices makes it O(n log K) with O(K) memory.
//
// Order: higher score first; equal scores are broken by the LOWER item index first, so results
// are deterministic and identical in every process. NaN scores rank below every number (-∞),
// so a model that emits NaN for some items can still be evaluated on the rest.
import { MetricsError } from './regression.ts';

export type Scores = Float32Array | Float64Array;

function key(s: Scores, i: number): number {
  const v = s[i];
  return v !== v ? Number.NEGATIVE_INFINITY : v;
}

/** True when item a ranks strictly after item b (lower score, or equal score and higher index). */
function after(s: Scores, a: number, b: number): boolean {
  const x = key(s, a);
  const y = key(s, b);
  return x < y || (x === y && a > b);
}

/** True when item a ranks strictly before item b under the topK order. */
export function rankedBefore(s: Scores, a: number, b: number): boolean {
  return after(s, b, a);
}

function checkK(k: number, where: string): void {
  if (!Number.isInteger(k) || k < 1) throw new MetricsError(`${where}: K must be an integer >= 1, got ${k}`);
}

/** Ascending copy of the excluded ids (so the scan can skip them with one moving pointer). */
function sortedExclude(exclude: Int32Array | undefined): Int32Array | undefined {
  if (exclude === undefined || exclude.length === 0) return undefined;
  return Int32Array.from(exclude).sort();
}

/**
 * The K best items of `scores` (item i has score scores[i]), best first, skipping the items in
 * `exclude` (e.g. the user's training items). Returns fewer than K items when fewer remain.
 * O(n log K) time, O(K + |exclude|) memory. Ties: lower item index first (see the file header).
 */
export function topK(scores: Scores, k: number, exclude?: Int32Array): Int32Array {
  checkK(k, 'topK');
  const n = scores.length;
  const ex = sortedExclude(exclude);
  const cap = Math.min(k, n);
  // heap[0] is the worst of the kept items: the one the next better candidate replaces.
  const heap = new Int32Array(cap);
  let size = 0;
  let e = 0;
  for (let i = 0; i < n; i++) {
    if (ex !== undefined) {
      while (e < ex.length && ex[e] < i) e++;
      if (e < ex.length && ex[e] === i) continue;
    }
    if (size < cap) {
      // Sift up: the new item climbs while it ranks after its parent.
      let c = size++;
      heap[c] = i;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!after(scores, heap[c], heap[p])) break;
        const t = heap[c];
        heap[c] = heap[p];
        heap[p] = t;
        c = p;
      }
    } else if (cap > 0 && after(scores, heap[0], i)) {
      heap[0] = i;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        const r = l + 1;
        let w = p;
        if (l < size && after(scores, heap[l], heap[w])) w = l;
        if (r < size && after(scores, heap[r], heap[w])) w = r;
        if (w === p) break;
        const t = heap[p];
        heap[p] = heap[w];
        heap[w] = t;
        p = w;
      }
    }
  }
  const out = heap.slice(0, size);
  // K log K final sort into ranking order.
  return out.sort((a, b) => (after(scores, a, b) ? 1 : after(scores, b, a) ? -1 : 0));
}

/**
 * 1-based rank that `item` would get in the full ranking of `scores` with `exclude` removed
 * (same tie rule as topK), in O(n) without sorting. Used for MRR over the whole catalogue.
 */
export function rankOf(scores: Scores, item: number, exclude?: Int32Array): number {
  if (!Number.isInteger(item) || item < 0 || item >= scores.length) {
    throw new MetricsError(`rankOf: item ${item} is outside the ${scores.length} scored items`);
  }
  const ex = sortedExclude(exclude);
  let rank = 1;
  let e = 0;
  for (let i = 0; i < scores.length; i++) {
    if (ex !== undefined) {
      while (e < ex.length && ex[e] < i) e++;
      if (e < ex.length && ex[e] === i) continue;
    }
    if (i !== item && after(scores, item, i)) rank++;
  }
  return rank;
}
