// Summary statistics of a ratings set (what `describe` prints).
import type { Ratings } from './types.ts';

export interface RatingsSummary {
  readonly users: number;
  readonly items: number;
  readonly ratings: number;
  /** ratings / (users × items). */
  readonly density: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  /** Rating value (rounded to 0.5) → count, ascending. */
  readonly histogram: readonly (readonly [number, number])[];
  readonly hasTimestamps: boolean;
}

export function describe(r: Ratings): RatingsSummary {
  const users = new Set<number>();
  const items = new Set<number>();
  const hist = new Map<number, number>();
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < r.length; i++) {
    users.add(r.user[i]);
    items.add(r.item[i]);
    const v = r.rating[i];
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    const bucket = Math.round(v * 2) / 2;
    hist.set(bucket, (hist.get(bucket) ?? 0) + 1);
  }
  const n = r.length;
  return {
    users: users.size,
    items: items.size,
    ratings: n,
    density: n === 0 ? 0 : n / (users.size * items.size),
    mean: n === 0 ? Number.NaN : sum / n,
    min: n === 0 ? Number.NaN : min,
    max: n === 0 ? Number.NaN : max,
    histogram: [...hist.entries()].sort((a, b) => a[0] - b[0]),
    hasTimestamps: r.timestamp !== undefined,
  };
}

export function formatSummary(s: RatingsSummary): string {
  const total = Math.max(1, s.ratings);
  const widest = Math.max(1, ...s.histogram.map(([, c]) => c));
  const rows = [
    `users     ${s.users.toLocaleString('en-US')}`,
    `items     ${s.items.toLocaleString('en-US')}`,
    `ratings   ${s.ratings.toLocaleString('en-US')}`,
    `density   ${(s.density * 100).toFixed(3)} %`,
    `mean      ${s.mean.toFixed(4)}   (min ${s.min}, max ${s.max})`,
    'histogram',
    ...s.histogram.map(
      ([v, c]) => `  ${v.toFixed(1).padStart(6)}  ${c.toLocaleString('en-US').padStart(12)}  ${((100 * c) / total).toFixed(1).padStart(5)} %  ${'#'.repeat(Math.round((40 * c) / widest))}`,
    ),
  ];
  return rows.join('\n');
}
