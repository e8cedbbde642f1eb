// Download → verify → unpack. GroupLens publishes an MD5 next to every archive (<zip>.md5); we
// fetch and check it (or take --md5), so a truncated or tampered download never gets unpacked.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ARCHIVES, DEFAULT_BASE_URL, type ArchiveName } from './archives.ts';
import { unzip } from './zip.ts';

export class FetchError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'FetchError';
  }
}

export class ChecksumError extends FetchError {
  constructor(file: string, expected: string, actual: string) {
    super(`${file}: MD5 is ${actual}, expected ${expected}; the download is corrupt or not the published archive — delete it and try again`);
    this.name = 'ChecksumError';
  }
}

export async function md5File(path: string): Promise<string> {
  const hash = createHash('md5');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Parses an .md5 file ("<hex>  <name>" or "MD5 (<name>) = <hex>"). */
export function parseMd5(text: string): string {
  const m = /\b([0-9a-f]{32})\b/i.exec(text);
  if (m === null) throw new FetchError(`not an MD5 checksum file: '${text.slice(0, 80)}'`);
  return m[1].toLowerCase();
}

export async function verifyMd5(path: string, expected: string): Promise<void> {
  const actual = await md5File(path);
  if (actual !== expected.toLowerCase()) throw new ChecksumError(path, expected.toLowerCase(), actual);
}

export async function download(url: string, dest: string, onProgress?: (done: number, total: number | undefined) => void): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new FetchError(`cannot download ${url}: ${(err as Error).message} (no network? download it elsewhere and pass --zip)`, { cause: err });
  }
  if (!res.ok || res.body === null) throw new FetchError(`cannot download ${url}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length') ?? Number.NaN);
  let done = 0;
  const tmp = `${dest}.part`;
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (chunk: Buffer) => {
    done += chunk.length;
    onProgress?.(done, Number.isFinite(total) ? total : undefined);
  });
  await pipeline(body, createWriteStream(tmp));
  renameSync(tmp, dest);
}

export interface FetchOptions {
  readonly name: ArchiveName;
  readonly dir: string;
  readonly baseUrl?: string;
  /** Use this local zip instead of downloading. */
  readonly zip?: string;
  /** Expected MD5; default: the published <zip>.md5. */
  readonly md5?: string;
  readonly log?: (line: string) => void;
}

/** Returns the path of the ratings file inside the unpacked archive. */
export async function fetchMovieLens(o: FetchOptions): Promise<string> {
  const log = o.log ?? (() => undefined);
  const base = o.baseUrl ?? DEFAULT_BASE_URL;
  mkdirSync(o.dir, { recursive: true });
  const zipPath = o.zip ?? join(o.dir, `${o.name}.zip`);
  if (o.zip === undefined && !existsSync(zipPath)) {
    log(`downloading ${base}/${o.name}.zip`);
    let lastPct = -1;
    await download(`${base}/${o.name}.zip`, zipPath, (done, total) => {
      const pct = total !== undefined ? Math.floor((100 * done) / total) : -1;
      if (pct !== lastPct && pct % 5 === 0) {
        lastPct = pct;
        log(`  ${(done / 1e6).toFixed(1)} MB${total !== undefined ? ` of ${(total / 1e6).toFixed(1)} MB (${pct} %)` : ''}`);
      }
    });
  }
  let expected = o.md5;
  if (expected === undefined) {
    const url = `${base}/${o.name}.zip.md5`;
    let res: Response;
    try {
      res = await fetch(url);
    } catch (err) {
      throw new FetchError(`cannot fetch the checksum ${url}: ${(err as Error).message} (pass --md5 to verify offline)`, { cause: err });
    }
    if (!res.ok) throw new FetchError(`cannot fetch the checksum ${url}: HTTP ${res.status} (pass --md5 to verify offline)`);
    expected = parseMd5(await res.text());
  }
  log(`verifying MD5 ${expected}`);
  try {
    await verifyMd5(zipPath, expected);
  } catch (err) {
    if (o.zip === undefined) rmSync(zipPath, { force: true }); // never keep a bad download around
    throw err;
  }
  log(`unpacking into ${o.dir}`);
  unzip(zipPath, o.dir);
  const ratings = join(o.dir, ARCHIVES[o.name].ratings);
  if (!existsSync(ratings)) throw new FetchError(`the archive has no ${ARCHIVES[o.name].ratings}; is ${zipPath} really ${o.name}?`);
  return ratings;
}
