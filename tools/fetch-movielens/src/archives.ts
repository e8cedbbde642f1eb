// The MovieLens archives GroupLens publishes, and where their ratings file sits inside.
export const DEFAULT_BASE_URL = 'https://files.grouplens.org/datasets/movielens';

export const ARCHIVES = {
  'ml-100k': { ratings: 'ml-100k/u.data' },
  'ml-1m': { ratings: 'ml-1m/ratings.dat' },
  'ml-10m': { ratings: 'ml-10M100K/ratings.dat' },
  'ml-latest-small': { ratings: 'ml-latest-small/ratings.csv' },
  'ml-20m': { ratings: 'ml-20m/ratings.csv' },
  'ml-25m': { ratings: 'ml-25m/ratings.csv' },
  'ml-32m': { ratings: 'ml-32m/ratings.csv' },
} as const;

export type ArchiveName = keyof typeof ARCHIVES;

export function isArchiveName(name: string): name is ArchiveName {
  return Object.hasOwn(ARCHIVES, name);
}
