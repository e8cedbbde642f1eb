// Just enough of the zip format to unpack MovieLens archives (stored and deflated entries) with
// node:zlib, so no `unzip` binary is needed. Reads the central directory, checks each entry's CRC.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, isAbsolute } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';

export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZipError';
  }
}

export interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localOffset: number;
}

function findEnd(buf: Buffer, file: string): number {
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) return i;
  }
  throw new ZipError(`${file} is not a zip archive (no end-of-central-directory record); the download may be truncated`);
}

export function listZip(buf: Buffer, file = 'archive'): ZipEntry[] {
  const end = findEnd(buf, file);
  const count = buf.readUInt16LE(end + 10);
  let p = buf.readUInt32LE(end + 16);
  const entries: ZipEntry[] = [];
  for (let k = 0; k < count; k++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw new ZipError(`${file}: corrupt central directory at entry ${k}`);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    entries.push({
      name: buf.toString('utf8', p + 46, p + 46 + nameLen),
      method: buf.readUInt16LE(p + 10),
      crc: buf.readUInt32LE(p + 16),
      compressedSize: buf.readUInt32LE(p + 20),
      size: buf.readUInt32LE(p + 24),
      localOffset: buf.readUInt32LE(p + 42),
    });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

export function readEntry(buf: Buffer, e: ZipEntry, file = 'archive'): Buffer {
  const p = e.localOffset;
  if (p + 30 > buf.length || buf.readUInt32LE(p) !== 0x04034b50) throw new ZipError(`${file}: bad local header for ${e.name}`);
  const start = p + 30 + buf.readUInt16LE(p + 26) + buf.readUInt16LE(p + 28);
  const raw = buf.subarray(start, start + e.compressedSize);
  if (raw.length !== e.compressedSize) throw new ZipError(`${file}: ${e.name} is truncated`);
  let data: Buffer;
  if (e.method === 0) data = raw;
  else if (e.method === 8) {
    try {
      data = inflateRawSync(raw);
    } catch (err) {
      throw new ZipError(`${file}: ${e.name} does not inflate (${(err as Error).message})`);
    }
  } else throw new ZipError(`${file}: ${e.name} uses compression method ${e.method}; only stored (0) and deflate (8) are supported`);
  if (data.length !== e.size || crc32(data) >>> 0 !== e.crc >>> 0) throw new ZipError(`${file}: ${e.name} fails its CRC check (corrupt archive)`);
  return data;
}

/** Unpacks every file of the archive under `dir`; returns the written paths. */
export function unzip(file: string, dir: string): string[] {
  const buf = readFileSync(file);
  const written: string[] = [];
  for (const e of listZip(buf, file)) {
    if (e.name.endsWith('/')) continue;
    const rel = normalize(e.name);
    if (isAbsolute(rel) || rel.startsWith('..')) throw new ZipError(`${file}: refusing to write outside the target dir (${e.name})`);
    const out = join(dir, rel);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, readEntry(buf, e, file));
    written.push(out);
  }
  return written;
}
