// npx nx run export -- --model-dir out/<job>/model --out DIR
// A trained model as a TF.js LayersModel (DIR/model.json + weights.bin): load it with
// tf.loadLayersModel('file://DIR/model.json') in Node or tf.loadLayersModel('DIR/model.json') in a
// browser; inputs `user` and `item` (int32 [n, 1], the model's internal indices), output [n, 1].
import { parseArgs } from 'node:util';
import { resolveUserPath } from '@actorflow/data';
import { selectBackend } from '@actorflow/engine';
import { EXPORTABLE_MODELS, ExportError, exportModel } from './src/export.ts';

const usage = `Usage: npx nx run export -- --model-dir DIR --out DIR [--backend NAME]
  --model-dir DIR   a trained model: out/<job>/model of a finished job (params.bin + config.json)
  --out DIR         where model.json and weights.bin go (created)
  --backend NAME    TF.js backend (default: best available)
Exportable models: ${EXPORTABLE_MODELS.join(', ')}.`;

try {
  const { values: v } = parseArgs({ options: { 'model-dir': { type: 'string' }, out: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean' } } });
  if (v.help === true) {
    console.log(usage);
    process.exit(0);
  }
  if (v['model-dir'] === undefined) throw new ExportError('--model-dir is required (out/<job>/model of a finished job)');
  if (v.out === undefined) throw new ExportError('--out is required (the folder for model.json and weights.bin)');
  const log = (line: string): void => console.error(line);
  const engine = await selectBackend({ ...(v.backend !== undefined ? { backend: v.backend } : {}), log });
  // Paths relative to the folder the user ran the command in (npm/nx run this in apps/export).
  const r = await exportModel(engine.tf, resolveUserPath(v['model-dir']), resolveUserPath(v.out), log);
  console.log(
    `exported ${r.model} (${r.numUsers} users, ${r.numItems} items${r.ratingRange !== undefined ? `, clipped to [${r.ratingRange.join(', ')}]` : ''}${r.coldStart ? ', cold-start rows filled' : ''}) to ${r.modelJson}`,
  );
  console.log(`load it with tf.loadLayersModel('file://${r.modelJson}'); inputs user, item (int32 [n, 1]); output [n, 1]`);
} catch (err) {
  if (err instanceof ExportError || (err as Error).name.endsWith('Error')) {
    console.error(`export: ${(err as Error).message}`);
    process.exit(2);
  }
  throw err;
}
