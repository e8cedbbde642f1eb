// npx nx run fetch-movielens -- ml-100k [--dir data] [--md5 HEX] [--zip local.zip] [--base-url URL]
import { parseArgs } from 'node:util';
import { ARCHIVES, FetchError, ZipError, fetchMovieLens, isArchiveName } from './mod.ts';

const usage = `Usage: npx nx run fetch-movielens -- <${Object.keys(ARCHIVES).join('|')}> [--dir data] [--md5 HEX] [--zip FILE] [--base-url URL]`;
let parsed;
try {
  parsed = parseArgs({ allowPositionals: true, options: { dir: { type: 'string' }, md5: { type: 'string' }, zip: { type: 'string' }, 'base-url': { type: 'string' }, help: { type: 'boolean' } } });
} catch (err) {
  console.error(`fetch-movielens: ${(err as Error).message}\n${usage}`);
  process.exit(2);
}
const name = parsed.positionals[0];
if (parsed.values.help === true) {
  console.log(usage);
  process.exit(0);
}
if (name === undefined || !isArchiveName(name)) {
  console.error(`fetch-movielens: ${name === undefined ? 'no archive named' : `unknown archive '${name}'`}\n${usage}`);
  process.exit(2);
}
try {
  const ratings = await fetchMovieLens({
    name,
    dir: parsed.values.dir ?? 'data',
    ...(parsed.values.md5 !== undefined ? { md5: parsed.values.md5 } : {}),
    ...(parsed.values.zip !== undefined ? { zip: parsed.values.zip } : {}),
    ...(parsed.values['base-url'] !== undefined ? { baseUrl: parsed.values['base-url'] } : {}),
    log: (line) => console.error(line),
  });
  console.log(ratings);
} catch (err) {
  if (err instanceof FetchError || err instanceof ZipError) {
    console.error(`fetch-movielens: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
