// `npx nx run data:smoke -- [--size small] [--seed 42] [--out out/smoke]`: generates the embedded
// synthetic dataset, splits it, saves both sides as Arrow files and prints the summary and the
// noise floor — the main command until the training job exists.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describe, formatSummary } from '../describe.ts';
import { saveRatingsArrow } from '../arrow-files.ts';
import { randomSplit } from '../splits.ts';
import { SYNTHETIC_SIZES, syntheticRatings, type SyntheticSize } from '../synthetic.ts';

const { values } = parseArgs({ options: { size: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' } } });
const size = (values.size ?? 'small') as SyntheticSize;
if (!(size in SYNTHETIC_SIZES)) {
  console.error(`smoke: unknown size '${size}'; use ${Object.keys(SYNTHETIC_SIZES).join(', ')}`);
  process.exit(2);
}
const seed = Number(values.seed ?? 42);
const out = values.out ?? join('out', 'smoke');
const t0 = performance.now();
console.error(`generating synthetic:${size} (seed ${seed}) …`);
const data = syntheticRatings(size, seed);
console.error(`splitting (random 10 %) …`);
const split = randomSplit(data.ratings, { seed });
mkdirSync(out, { recursive: true });
saveRatingsArrow(join(out, 'train.arrow'), { ratings: split.train, meta: { source: `synthetic:${size}`, seed: String(seed), split: 'random:0.1' } });
saveRatingsArrow(join(out, 'test.arrow'), { ratings: split.test, meta: { source: `synthetic:${size}`, seed: String(seed), split: 'random:0.1' } });
console.log(formatSummary(describe(data.ratings)));
console.log(`train ${split.train.length.toLocaleString('en-US')} / test ${split.test.length.toLocaleString('en-US')} ratings → ${out}/{train,test}.arrow`);
console.log(`noise floor: the true low-rank model scores RMSE ${data.truth.floorRmse.toFixed(4)} (noise σ ${data.truth.noiseSigma}) — the best any model can do`);
console.error(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
