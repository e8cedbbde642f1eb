// Binary search over sorted typed arrays — the one copy every lib uses (ids of sorted rows, CSR
// columns, a CDF), so a fix or a faster version lands everywhere at once.

/** Anything indexable by position with numeric values (typed arrays, arrays). */
export type SortedNumbers = ArrayLike<number>;

/**
 * The first position in [lo, hi) whose value is ≥ `value` (hi when none is): `sorted` must be
 * ascending there. Like C++'s std::lower_bound and NumPy's searchsorted(side='left').
 */
export function lowerBound(sorted: SortedNumbers, value: number, lo = 0, hi = sorted.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Position of `value` in `sorted` (ascending, unique) within [lo, hi), or −1. */
export function sortedIndexOf(sorted: SortedNumbers, value: number, lo = 0, hi = sorted.length): number {
  const at = lowerBound(sorted, value, lo, hi);
  return at < hi && sorted[at] === value ? at : -1;
}
