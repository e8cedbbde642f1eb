// Early stopping on a validation set carved from training (--validation F|file:PATH, served by
// the data shards as the 'validation' kind and never trained on): flags.
export const EARLY_STOP_FLAG_OPTIONS = {
  validation: { type: 'string' },
  'early-stop': { type: 'string' },
} as const;

export const EARLY_STOP_USAGE = `  --validation F|file:PATH   a validation set carved from training (a seeded fraction, e.g. 0.05, or a
                             ratings file whose ratings are removed from training), evaluated each epoch
  --early-stop PATIENCE      with --validation: stop when the validation metric has not improved for
                             PATIENCE epochs; the best epoch's model is what the job keeps`;

/** --early-stop PATIENCE (needs --validation). */
export function earlyStopFlags(v: { 'early-stop'?: string }, validation: string | undefined, fail: (message: string) => Error): { earlyStop?: number } {
  const raw = v['early-stop'];
  if (raw === undefined) return {};
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1) throw fail(`--early-stop takes a patience in epochs, a positive integer, got '${raw}'`);
  if (validation === undefined) throw fail(`--early-stop ${raw} needs a validation set: add --validation 0.05 (a fraction of the training ratings) or --validation file:PATH`);
  return { earlyStop: n };
}
