// npx nx run recommend -- --model-dir out/<job>/model --user 196 [--n 10]
// npx nx run recommend -- --model-dir out/<job>/model --similar-to 50 [--n 10]
// Top-N items for a user (what they rated in training excluded) or the items most similar to an
// item, from a trained model, on the dataset's own ids. --json prints machine-readable output.
import { parseArgs } from 'node:util';
import { resolveUserPath } from '@actorflow/data';
import { selectBackend } from '@actorflow/engine';
import { Recommender, RecommendError } from './src/recommender.ts';

const usage = `Usage: npx nx run recommend -- --model-dir DIR (--user ID | --similar-to ITEM) [options]
  --model-dir DIR     a trained model: out/<job>/model of a finished job (params.bin + config.json)
  --user ID           recommend for this user (the dataset's id, e.g. a MovieLens userId)
  --similar-to ITEM   items most similar to this item (the dataset's id)
  --n N               how many (default 10)
  --json              print JSON instead of a table
  --backend NAME      TF.js backend (default: best available)`;

try {
  const { values: v } = parseArgs({
    options: {
      'model-dir': { type: 'string' },
      user: { type: 'string' },
      'similar-to': { type: 'string' },
      n: { type: 'string' },
      json: { type: 'boolean' },
      backend: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (v.help === true) {
    console.log(usage);
    process.exit(0);
  }
  if (v['model-dir'] === undefined) throw new RecommendError('--model-dir is required (out/<job>/model of a finished job)');
  if ((v.user === undefined) === (v['similar-to'] === undefined)) throw new RecommendError('give exactly one of --user ID or --similar-to ITEM');
  const n = Number(v.n ?? 10);
  if (!Number.isInteger(n) || n < 1) throw new RecommendError(`--n must be a positive integer, got '${v.n}'`);
  const log = (line: string): void => console.error(line);
  // Relative to the folder the user ran the command in (npm/nx run this in apps/recommend).
  const rec = await Recommender.open(resolveUserPath(v['model-dir']), log);
  const rows = v.user !== undefined ? rec.recommend(await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log }), v.user, n) : rec.similar(v['similar-to'] as string, n);
  if (v.json === true) console.log(JSON.stringify(rows));
  else {
    console.log(v.user !== undefined ? `top ${n} for user ${v.user} (${rec.seen(v.user).length} rated items excluded), ${rec.name}:` : `items most similar to ${v['similar-to']} (${rec.similarity}):`);
    rows.forEach((r, k) => console.log(`${String(k + 1).padStart(3)}. item ${String(r.id).padEnd(10)} score ${r.score.toFixed(4)}`));
  }
} catch (err) {
  if (err instanceof RecommendError || (err as Error).name.endsWith('Error')) {
    console.error(`recommend: ${(err as Error).message}`);
    process.exit(2);
  }
  throw err;
}
