// `npx nx run data:describe -- <file> [--format F] [--skip-bad-lines]`: load a ratings file
// (any supported format, or a preprocessed .arrow file) and print its summary.
import { parseArgs } from 'node:util';
import { describe, formatSummary } from '../describe.ts';
import { DataError } from '../errors.ts';
import { loadRatings, type RatingsFormat } from '../loaders.ts';
import { loadRatingsArrow } from '../arrow-files.ts';
import { resolveUserPath } from '../paths.ts';

const usage = `Usage: npx nx run data:describe -- <ratings file> [--format auto|ml-100k|ml-1m|ml-csv|netflix|arrow] [--skip-bad-lines]`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { format: { type: 'string' }, 'skip-bad-lines': { type: 'boolean' }, help: { type: 'boolean' } } });
  } catch (err) {
    console.error(`describe: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (parsed.values.help === true) {
    console.log(usage);
    return 0;
  }
  const given = parsed.positionals[0];
  // Relative to the folder the user ran the command in (npm/nx run this in libs/data).
  const file = given === undefined ? undefined : resolveUserPath(given);
  if (file === undefined) {
    console.error(`describe: no file given\n${usage}`);
    return 2;
  }
  const format = parsed.values.format ?? (file.endsWith('.arrow') ? 'arrow' : 'auto');
  const started = Date.now();
  try {
    if (format === 'arrow') {
      console.log(formatSummary(describe(loadRatingsArrow(file).ratings)));
      return 0;
    }
    const loaded = await loadRatings(file, {
      format: format as RatingsFormat | 'auto',
      skipBadLines: parsed.values['skip-bad-lines'] === true,
      onProgress: (p) => process.stderr.write(`\rloading ${file}: ${(p.bytes / 1e6).toFixed(0)}/${(p.totalBytes / 1e6).toFixed(0)} MB, ${p.rows.toLocaleString('en-US')} ratings`),
    });
    process.stderr.write(`\rloaded ${file} (${loaded.format}) in ${((Date.now() - started) / 1000).toFixed(1)} s${' '.repeat(20)}\n`);
    console.log(formatSummary(describe(loaded.ratings)));
    if (loaded.skipped > 0) {
      console.log(`skipped ${loaded.skipped} malformed line(s); first: ${loaded.firstErrors.map((e) => e.message).join('; ')}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof DataError) {
      console.error(`describe: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main();
