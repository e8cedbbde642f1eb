// Streaming loaders for rating files. Files are read in 1 MiB chunks and split into lines here
// (never read whole into a string), ids are encoded on the fly, and rows go straight into
// typed-array columns: a 20M-line file stays well under 1.5 GB of memory.
import { createReadStream, existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { RatingsBuilder } from './columns.ts';
import { IdMap } from './encoding.ts';
import { DataError, FormatError, ParseError } from './errors.ts';
import type { Ratings } from './types.ts';

export type RatingsFormat = 'ml-100k' | 'ml-1m' | 'ml-csv' | 'netflix' | 'generic';

export interface ColumnMapping {
  readonly delimiter: string;
  readonly header: boolean;
  /** Column name (needs header) or 0-based index. */
  readonly user: string | number;
  readonly item: string | number;
  /** Absent: every row is an interaction with rating 1. */
  readonly rating?: string | number;
  /** Unix seconds, or anything Date.parse understands. */
  readonly timestamp?: string | number;
}

export interface LoadProgress {
  readonly bytes: number;
  readonly totalBytes: number;
  readonly rows: number;
}

export interface LoadOptions {
  /** Default 'auto': by file name, then by content. */
  readonly format?: RatingsFormat | 'auto';
  /** For 'generic' (and to override the delimiter of the others). */
  readonly mapping?: ColumnMapping;
  /** Skip malformed lines instead of failing; they are counted and the first few reported. */
  readonly skipBadLines?: boolean;
  readonly onProgress?: (p: LoadProgress) => void;
  /** Stop after this many rows (for quick looks at big files). */
  readonly limit?: number;
  /**
   * Id maps to encode into (extended with new ids), so two files share one encoding: load the
   * training file, then the test file with `{ users: train.users, items: train.items }`.
   */
  readonly users?: IdMap;
  readonly items?: IdMap;
  /** Every rating must lie in [lo, hi] (e.g. [1, 5] for MovieLens); a rating outside is a bad line. */
  readonly ratingRange?: readonly [number, number];
}

export interface LoadedRatings {
  /** Encoded: user and item are contiguous indices into `users` / `items`. */
  readonly ratings: Ratings;
  readonly users: IdMap;
  readonly items: IdMap;
  readonly format: RatingsFormat;
  readonly skipped: number;
  /** The first (up to 10) bad lines, when skipping. */
  readonly firstErrors: readonly ParseError[];
}

const MAX_REPORTED = 10;

/** Guesses the format from the file name, then from the first line. */
export function detectFormat(path: string): RatingsFormat {
  const name = basename(path).toLowerCase();
  if (name === 'u.data' || /^u\d\.(base|test)$/.test(name) || /^u[ab]\.(base|test)$/.test(name)) return 'ml-100k';
  if (name.startsWith('combined_data')) return 'netflix';
  const first = firstLine(path);
  if (first.includes('::')) return 'ml-1m';
  if (/^userId,movieId,rating/i.test(first)) return 'ml-csv';
  if (/^\d+:\s*$/.test(first)) return 'netflix';
  if (/^\d+\t\d+\t[\d.]+\t\d+$/.test(first)) return 'ml-100k';
  throw new FormatError(`cannot tell the format of ${path} (first line: '${first.slice(0, 80)}'); pass format 'ml-100k', 'ml-1m', 'ml-csv', 'netflix', or 'generic' with a column mapping`);
}

function firstLine(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.toString('utf8', 0, n);
    const nl = text.search(/\r?\n/);
    return nl === -1 ? text : text.slice(0, nl);
  } finally {
    closeSync(fd);
  }
}

/** Splits a byte stream into lines; yields [lineNumber, text] (1-based, without the newline). */
async function* lines(path: string, onBytes: (n: number) => void): AsyncGenerator<[number, string]> {
  let carry: Buffer | undefined;
  let lineNo = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    onBytes(chunk.length);
    const buf = carry !== undefined ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl === -1) break;
      const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl;
      yield [++lineNo, buf.toString('utf8', start, end)];
      start = nl + 1;
    }
    carry = start < buf.length ? buf.subarray(start) : undefined;
  }
  if (carry !== undefined && carry.length > 0) {
    const end = carry[carry.length - 1] === 13 ? carry.length - 1 : carry.length;
    yield [lineNo + 1, carry.toString('utf8', 0, end)];
  }
}

function parseNumber(file: string, line: number, what: string, text: string | undefined): number {
  if (text === undefined || text.trim() === '') throw new ParseError(file, line, `${what} is missing`);
  const v = Number(text);
  if (!Number.isFinite(v)) throw new ParseError(file, line, `${what} '${text}' is not a number`);
  return v;
}

function checkRange(file: string, line: number, rating: number, range: readonly [number, number] | undefined): number {
  if (range !== undefined && (rating < range[0] || rating > range[1])) throw new ParseError(file, line, `rating ${rating} is outside the rating range ${range[0]}…${range[1]}`);
  return rating;
}

function parseTimestamp(file: string, line: number, text: string | undefined): number {
  if (text === undefined || text.trim() === '') throw new ParseError(file, line, 'timestamp is missing');
  const n = Number(text);
  if (Number.isFinite(n)) return n;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new ParseError(file, line, `timestamp '${text}' is neither unix seconds nor a date`);
  return ms / 1000;
}

function numericId(file: string, line: number, what: string, text: string | undefined): number {
  const v = parseNumber(file, line, what, text);
  if (!Number.isInteger(v)) throw new ParseError(file, line, `${what} '${text}' is not an integer id`);
  if (v < -2147483648 || v > 2147483647) throw new ParseError(file, line, `${what} '${text}' is outside the 32-bit integer range`);
  return v;
}

interface Layout {
  readonly delimiter: string;
  readonly header: boolean;
  readonly user: number;
  readonly item: number;
  readonly rating: number | undefined;
  readonly timestamp: number | undefined;
  readonly numericIds: boolean;
  readonly minFields: number;
}

const FIXED: Record<Exclude<RatingsFormat, 'generic' | 'netflix'>, Layout> = {
  'ml-100k': { delimiter: '\t', header: false, user: 0, item: 1, rating: 2, timestamp: 3, numericIds: true, minFields: 4 },
  'ml-1m': { delimiter: '::', header: false, user: 0, item: 1, rating: 2, timestamp: 3, numericIds: true, minFields: 4 },
  'ml-csv': { delimiter: ',', header: true, user: 0, item: 1, rating: 2, timestamp: 3, numericIds: true, minFields: 4 },
};

function resolveColumn(file: string, which: string, col: string | number, names: string[] | undefined): number {
  if (typeof col === 'number') {
    if (!Number.isInteger(col) || col < 0) throw new FormatError(`column mapping: ${which} index ${col} is not a column index`);
    return col;
  }
  if (names === undefined) throw new FormatError(`column mapping: ${which} is named '${col}' but the mapping says the file has no header`);
  const i = names.indexOf(col);
  if (i === -1) throw new FormatError(`${file}: header has no column '${col}' (for ${which}); columns are: ${names.join(', ')}`);
  return i;
}

/** The layout of a generic file from its column mapping (names resolved against the header, when there is one). */
function genericLayout(file: string, m: ColumnMapping, delimiter: string, names: string[] | undefined): Layout {
  const cols = {
    user: resolveColumn(file, 'user', m.user, names),
    item: resolveColumn(file, 'item', m.item, names),
    rating: m.rating !== undefined ? resolveColumn(file, 'rating', m.rating, names) : undefined,
    timestamp: m.timestamp !== undefined ? resolveColumn(file, 'timestamp', m.timestamp, names) : undefined,
  };
  return { delimiter, header: names !== undefined, ...cols, numericIds: false, minFields: 1 + Math.max(cols.user, cols.item, cols.rating ?? 0, cols.timestamp ?? 0) };
}

/** Loads a ratings file into encoded columns. */
export async function loadRatings(path: string, opts: LoadOptions = {}): Promise<LoadedRatings> {
  const r = opts.ratingRange;
  if (r !== undefined && !(Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] <= r[1])) throw new DataError(`rating range must be two finite numbers lo ≤ hi, got ${r.join(',')}`);
  if (!existsSync(path)) throw new DataError(`no such file: ${path}`);
  const totalBytes = statSync(path).size;
  const format = opts.format === undefined || opts.format === 'auto' ? (opts.mapping !== undefined ? 'generic' : detectFormat(path)) : opts.format;
  if (format === 'generic' && opts.mapping === undefined) throw new FormatError(`format 'generic' needs a column mapping`);
  const users = opts.users ?? new IdMap();
  const items = opts.items ?? new IdMap();
  const firstErrors: ParseError[] = [];
  let skipped = 0;
  let bytes = 0;
  let lastReport = 0;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const onBytes = (n: number): void => {
    bytes += n;
    if (opts.onProgress !== undefined && bytes - lastReport >= 16 << 20) {
      lastReport = bytes;
      opts.onProgress({ bytes, totalBytes, rows: builder.length });
    }
  };
  const bad = (err: ParseError): void => {
    if (opts.skipBadLines !== true) throw err;
    skipped++;
    if (firstErrors.length < MAX_REPORTED) firstErrors.push(err);
  };
  const hasTimestamps = format === 'generic' ? opts.mapping?.timestamp !== undefined : true;
  const builder = new RatingsBuilder(hasTimestamps);

  if (format === 'netflix') {
    let movie: number | undefined;
    for await (const [lineNo, text] of lines(path, onBytes)) {
      if (builder.length >= limit) break;
      if (text === '') continue;
      try {
        if (text.endsWith(':')) {
          movie = numericId(path, lineNo, 'movie id', text.slice(0, -1));
          continue;
        }
        if (movie === undefined) throw new ParseError(path, lineNo, 'rating line before any "<movieId>:" line');
        const f = text.split(',');
        if (f.length < 3) throw new ParseError(path, lineNo, `expected customer,rating,date, got ${f.length} field(s)`);
        const user = numericId(path, lineNo, 'customer id', f[0]);
        const rating = checkRange(path, lineNo, parseNumber(path, lineNo, 'rating', f[1]), opts.ratingRange);
        const ts = parseTimestamp(path, lineNo, f[2]);
        builder.push(users.encode(user), items.encode(movie), rating, ts);
      } catch (err) {
        if (err instanceof ParseError) bad(err);
        else throw err;
      }
    }
  } else {
    let layout: Layout | undefined = format === 'generic' ? undefined : FIXED[format];
    const delimiter = opts.mapping?.delimiter ?? layout?.delimiter ?? ',';
    const header = format === 'generic' ? (opts.mapping as ColumnMapping).header : (layout as Layout).header;
    let headerSeen = !header;
    for await (const [lineNo, text] of lines(path, onBytes)) {
      if (builder.length >= limit) break;
      if (text === '') continue;
      const f = text.split(delimiter);
      if (!headerSeen) {
        headerSeen = true;
        if (format === 'generic')
          layout = genericLayout(
            path,
            opts.mapping as ColumnMapping,
            delimiter,
            f.map((s) => s.trim()),
          );
        continue;
      }
      layout ??= genericLayout(path, opts.mapping as ColumnMapping, delimiter, undefined);
      try {
        if (f.length < layout.minFields) {
          throw new ParseError(path, lineNo, `expected at least ${layout.minFields} fields separated by '${delimiter === '\t' ? '\\t' : delimiter}', got ${f.length}`);
        }
        const rawUser = layout.numericIds ? numericId(path, lineNo, 'user id', f[layout.user]) : f[layout.user].trim();
        const rawItem = layout.numericIds ? numericId(path, lineNo, 'item id', f[layout.item]) : f[layout.item].trim();
        if (rawUser === '' || rawItem === '') throw new ParseError(path, lineNo, `${rawUser === '' ? 'user' : 'item'} id is empty`);
        const rating = layout.rating !== undefined ? checkRange(path, lineNo, parseNumber(path, lineNo, 'rating', f[layout.rating]), opts.ratingRange) : 1;
        const ts = layout.timestamp !== undefined ? parseTimestamp(path, lineNo, f[layout.timestamp]) : 0;
        builder.push(users.encode(rawUser), items.encode(rawItem), rating, ts);
      } catch (err) {
        if (err instanceof ParseError) bad(err);
        else throw err;
      }
    }
  }
  opts.onProgress?.({ bytes, totalBytes, rows: builder.length });
  if (builder.length === 0) throw new DataError(`${path} has no ratings${skipped > 0 ? ` (all ${skipped} lines were malformed; first: ${firstErrors[0]?.message})` : ''}`);
  return { ratings: builder.build(), users, items, format, skipped, firstErrors };
}
