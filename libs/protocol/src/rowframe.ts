// Binary row frames: the parameter server's two big messages (a trainer's gradient push and a
// shard's pull reply) as one flat buffer instead of a msgpack tree, so the row blocks are written
// once into a buffer of the exact size and read back as typed-array views (no per-block copies,
// no msgpack buffer growth): far less garbage per step on both sides.
//
// Layout (little-endian):
//   0  u8   0xc1            (msgpack's never-used byte: a frame can never be taken for msgpack)
//   1  u8[2] 'A' 'F'
//   3  u8   kind            'G' gradient push, 'P' pull reply
//   4  u32  H               header bytes
//   8  H bytes              msgpack header: the scalar fields, t: [[table, rows, dim], …], d: [[dense, length], …]
//   …  zero padding to a multiple of 4
//   then per table in header order: Int32 rows[rows], Float32 values[rows × dim];
//   then per dense tensor in header order: Float32 values[length]. The frame ends exactly there.
//
// Decoding validates everything before handing anything out (every message may be hostile): magic,
// header length, the header's fields and types, names (unique, no '__proto__'), counts and dims
// (integers, bounded, sizes summed without overflow and equal to the frame's length), rows ≥ 0;
// pull replies also must hold only finite values. A gradient's values are checked for finiteness by
// the parameter shard (ParameterShard.push rejects them as NON_FINITE, counted per sender).
import { firstNonFiniteIndex } from './finite.ts';
import { DecodeError, ProtocolError } from './errors.ts';
import { decodeMsg, encodeMsg } from './msgpack.ts';
import { gradientCodec, pullReplyCodec, type GradientMessage, type PulledTable, type PullReply, type SparseRows } from './messages.ts';

export const ROW_FRAME_MAGIC = 0xc1;
const KIND_GRADIENT = 0x47; // 'G'
const KIND_PULL_REPLY = 0x50; // 'P'
/** Bounds on one frame's directory: far above any model, far below what could exhaust memory. */
export const ROW_FRAME_MAX_BLOCKS = 4096;
const MAX_COUNT = 0x7fffffff;
const MAX_NAME = 256;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new ProtocolError('row frames need a little-endian host (typed arrays are read in place); this host is big-endian');
}

/** True when the bytes are a row frame (else they may be msgpack). */
export function isRowFrame(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === ROW_FRAME_MAGIC && bytes[1] === 0x41 && bytes[2] === 0x46;
}

interface Block {
  readonly name: string;
  readonly rows: Int32Array;
  readonly dim: number;
  /** The rows' values, row-major… */
  readonly values?: Float32Array;
  /** …or a whole row-major table to gather `rows` from straight into the frame (rows must be in range). */
  readonly source?: Float32Array;
}

const pad4 = (n: number): number => (n + 3) & ~3;

function encodeFrame(kind: number, header: Record<string, unknown>, tables: readonly Block[], dense: readonly (readonly [string, Float32Array])[]): Uint8Array {
  const head = encodeMsg({ ...header, t: tables.map((b) => [b.name, b.rows.length, b.dim]), d: dense.map(([n, v]) => [n, v.length]) });
  const start = pad4(8 + head.length);
  let size = start;
  for (const b of tables) {
    if (b.values !== undefined && b.values.length !== b.rows.length * b.dim) throw new ProtocolError(`row frame: table ${b.name}: ${b.values.length} values != ${b.rows.length} rows × dim ${b.dim}`);
    if (b.values === undefined && b.source === undefined) throw new ProtocolError(`row frame: table ${b.name}: neither values nor a source table`);
    size += 4 * (b.rows.length + b.rows.length * b.dim);
  }
  for (const [, v] of dense) size += 4 * v.length;
  const out = new Uint8Array(size);
  out[0] = ROW_FRAME_MAGIC;
  out[1] = 0x41;
  out[2] = 0x46;
  out[3] = kind;
  new DataView(out.buffer).setUint32(4, head.length, true);
  out.set(head, 8);
  let at = start;
  for (const b of tables) {
    new Int32Array(out.buffer, at, b.rows.length).set(b.rows);
    at += 4 * b.rows.length;
    const n = b.rows.length * b.dim;
    const dst = new Float32Array(out.buffer, at, n);
    if (b.values !== undefined) dst.set(b.values);
    else gatherInto(dst, b.source as Float32Array, b.rows, b.dim, b.name);
    at += 4 * n;
  }
  for (const [, v] of dense) {
    new Float32Array(out.buffer, at, v.length).set(v);
    at += 4 * v.length;
  }
  return out;
}

function gatherInto(dst: Float32Array, src: Float32Array, rows: Int32Array, dim: number, name: string): void {
  const max = src.length / dim;
  for (let i = 0, o = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!(r >= 0 && r < max)) throw new ProtocolError(`row frame: table ${name}: row ${r} is out of range 0…${max - 1}`);
    for (let j = r * dim, e = j + dim; j < e; j++, o++) dst[o] = src[j];
  }
}

interface Decoded {
  readonly header: Record<string, unknown>;
  readonly tables: Record<string, PulledTable>;
  readonly dense: Record<string, Float32Array>;
}

function decodeFrame(bytes: Uint8Array, kind: number, what: string): Decoded {
  const fail = (reason: string): never => {
    throw new DecodeError(what, reason);
  };
  if (!(bytes instanceof Uint8Array)) fail('input is not a Uint8Array');
  if (bytes.length < 8) fail(`${bytes.length} bytes is shorter than a row frame's 8-byte preamble`);
  if (!isRowFrame(bytes)) fail('not a row frame (bad magic)');
  if (bytes[3] !== kind) fail(`row frame of kind 0x${bytes[3].toString(16)}, expected 0x${kind.toString(16)}`);
  const h = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  if (h === 0 || h > bytes.length - 8) fail(`header length ${h} does not fit in a frame of ${bytes.length} bytes`);
  const header = decodeMsg(bytes.subarray(8, 8 + h), `${what} header`);
  if (header === null || typeof header !== 'object' || Array.isArray(header) || ArrayBuffer.isView(header)) fail('header is not a map');
  const hdr = header as Record<string, unknown>;
  const dir = (key: 't' | 'd', width: 2 | 3): (readonly [string, number, number])[] => {
    const list = hdr[key];
    if (!Array.isArray(list)) fail(`header field '${key}' must be an array`);
    const l = list as unknown[];
    if (l.length > ROW_FRAME_MAX_BLOCKS) fail(`header field '${key}' lists ${l.length} blocks (at most ${ROW_FRAME_MAX_BLOCKS})`);
    const names = new Set<string>();
    return l.map((e, i) => {
      if (!Array.isArray(e) || e.length !== width) fail(`${key}[${i}] must be an array of ${width}`);
      const [name, n, dim] = e as unknown[];
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME) fail(`${key}[${i}]: name must be a string of 1…${MAX_NAME} characters`);
      const nm = name as string;
      if (nm === '__proto__' || names.has(nm)) fail(`${key}[${i}]: name '${nm}' is reserved or repeated`);
      names.add(nm);
      if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) > MAX_COUNT) fail(`${key}[${i}] (${nm}): count ${String(n)} is not an integer in 0…${MAX_COUNT}`);
      const d = width === 3 ? dim : 1;
      if (!Number.isSafeInteger(d) || (d as number) < 1 || (d as number) > MAX_COUNT) fail(`${key}[${i}] (${nm}): dim ${String(d)} is not an integer in 1…${MAX_COUNT}`);
      return [nm, n as number, d as number] as const;
    });
  };
  const t = dir('t', 3);
  const d = dir('d', 2);
  const start = pad4(8 + h);
  let size = start;
  for (const [, n, dim] of t) size += 4 * n + 4 * n * dim;
  for (const [, n] of d) size += 4 * n;
  if (size !== bytes.length) fail(`the header describes ${size} bytes, the frame has ${bytes.length}`);
  for (let i = 8 + h; i < start; i++) if (bytes[i] !== 0) fail('non-zero padding after the header');
  // Views need 4-byte alignment; a frame at an odd offset is copied once.
  // (A copy through the Uint8Array constructor: Buffer#slice would return a view at the same offset.)
  const buf = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  let at = buf.byteOffset + start;
  const tables: Record<string, PulledTable> = {};
  for (const [name, n, dim] of t) {
    const rows = new Int32Array(buf.buffer, at, n);
    at += 4 * n;
    for (let i = 0; i < n; i++) if (rows[i] < 0) fail(`table ${name}: row id ${rows[i]} is negative`);
    const values = new Float32Array(buf.buffer, at, n * dim);
    at += 4 * n * dim;
    tables[name] = { rows, values, dim };
  }
  const dense: Record<string, Float32Array> = {};
  for (const [name, n] of d) {
    dense[name] = new Float32Array(buf.buffer, at, n);
    at += 4 * n;
  }
  return { header: hdr, tables, dense };
}

function int(h: Record<string, unknown>, key: string, what: string): number {
  const v = h[key];
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw new DecodeError(what, `header field '${key}' must be a non-negative integer, got ${String(v)}`);
  return v as number;
}

/** Encodes a gradient push as a row frame (tables' dims from values ÷ rows). */
export function encodeGradientFrame(g: GradientMessage): Uint8Array {
  const tables = Object.entries(g.sparse).map(([name, s]) => ({ name, rows: s.rows, values: s.values, dim: s.rows.length === 0 ? 1 : s.values.length / s.rows.length }));
  for (const b of tables) if (!Number.isInteger(b.dim)) throw new ProtocolError(`row frame: table ${b.name}: ${b.values.length} values do not divide into ${b.rows.length} rows`);
  const header: Record<string, unknown> = { job: g.job, rank: g.rank, step: g.step, paramVersion: g.paramVersion, count: g.count, loss: g.loss };
  if (g.pushId !== undefined) header.pushId = g.pushId;
  return encodeFrame(KIND_GRADIENT, header, tables, Object.entries(g.dense));
}

/** Decodes a gradient push row frame (values are views into `bytes`, which must not be reused). */
export function decodeGradientFrame(bytes: Uint8Array): GradientMessage {
  const what = 'GradientMessage row frame';
  const { header: h, tables, dense } = decodeFrame(bytes, KIND_GRADIENT, what);
  if (typeof h.job !== 'string') throw new DecodeError(what, "header field 'job' must be a string");
  if (typeof h.loss !== 'number') throw new DecodeError(what, "header field 'loss' must be a number");
  const sparse: Record<string, SparseRows> = {};
  for (const [name, t] of Object.entries(tables)) sparse[name] = { rows: t.rows, values: t.values };
  let pushId: string | undefined;
  if (h.pushId !== undefined && h.pushId !== null) {
    if (typeof h.pushId !== 'string' || h.pushId.length === 0 || h.pushId.length > 128) throw new DecodeError(what, 'pushId must be a string of 1…128 characters');
    pushId = h.pushId;
  }
  return {
    job: h.job,
    rank: int(h, 'rank', what),
    step: int(h, 'step', what),
    paramVersion: int(h, 'paramVersion', what),
    count: int(h, 'count', what),
    loss: h.loss,
    dense,
    sparse,
    ...(pushId !== undefined ? { pushId } : {}),
  };
}

/** Encodes a pull reply as a row frame. */
export function encodePullReplyFrame(r: PullReply): Uint8Array {
  return encodeFrame(
    KIND_PULL_REPLY,
    { version: r.version },
    Object.entries(r.tables).map(([name, t]) => ({ name, rows: t.rows, values: t.values, dim: t.dim })),
    Object.entries(r.dense),
  );
}

/**
 * Encodes a pull reply gathering each table's rows straight from its row-major data (no
 * intermediate values array): what a parameter shard answers a pull with.
 */
export function encodePullReplyFrameFrom(
  version: number,
  tables: readonly { readonly name: string; readonly rows: Int32Array; readonly dim: number; readonly source: Float32Array }[],
  dense: Readonly<Record<string, Float32Array>>,
): Uint8Array {
  return encodeFrame(KIND_PULL_REPLY, { version }, tables, Object.entries(dense));
}

/** Decodes a pull reply row frame; every value must be finite (a shard never serves NaN/∞ rows). */
export function decodePullReplyFrame(bytes: Uint8Array): PullReply {
  const what = 'PullReply row frame';
  const { header: h, tables, dense } = decodeFrame(bytes, KIND_PULL_REPLY, what);
  for (const [name, t] of Object.entries(tables)) {
    const i = firstNonFiniteIndex(t.values);
    if (i >= 0) throw new DecodeError(what, `table ${name}: value ${t.values[i]} at row ${t.rows[Math.floor(i / t.dim)]}`);
  }
  for (const [name, v] of Object.entries(dense)) {
    const i = firstNonFiniteIndex(v);
    if (i >= 0) throw new DecodeError(what, `dense ${name}: element ${i} is ${v[i]}`);
  }
  return { version: int(h, 'version', what), tables, dense };
}

/** A gradient push in either encoding: row frame (what PsClient sends) or msgpack (gradientCodec). */
export function decodeGradient(bytes: Uint8Array): GradientMessage {
  return isRowFrame(bytes) ? decodeGradientFrame(bytes) : gradientCodec.decode(bytes);
}

/** A pull reply in either encoding: row frame (what servePsShard answers) or msgpack (pullReplyCodec). */
export function decodePullReply(bytes: Uint8Array): PullReply {
  return isRowFrame(bytes) ? decodePullReplyFrame(bytes) : pullReplyCodec.decode(bytes);
}
