// "Did you mean" for every command line and config file of the project (the launcher's flags and
// config keys, tune's grid keys, optimizer names): one edit distance, one threshold.

/** Levenshtein edit distance between two strings. */
export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

export interface DidYouMeanOptions {
  /** Put before the suggestion, e.g. '--' for flags. Default ''. */
  readonly prefix?: string;
  /** Compare case-insensitively. Default false. */
  readonly ignoreCase?: boolean;
}

/** " (did you mean <prefix>x?)" for the nearest candidate within a third of the word's length
 * (at least 2 edits), else "" — so it can be appended to any error message. */
export function didYouMean(word: string, candidates: readonly string[], options: DidYouMeanOptions = {}): string {
  const norm = options.ignoreCase === true ? (s: string) => s.toLowerCase() : (s: string) => s;
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = levenshtein(norm(word), norm(c));
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean ${options.prefix ?? ''}${best}?)` : '';
}
