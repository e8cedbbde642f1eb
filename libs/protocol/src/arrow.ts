// Arrow IPC (stream format) for the three batch schemas. Columns go in and out as typed arrays
// (no per-element JS loops), and decoding checks the schema so a batch of the wrong kind or
// garbage bytes become a DecodeError instead of NaNs downstream.
import { Field, FixedSizeList, Float32, Int32, List, RecordBatch, Schema, Struct, Table, makeData, tableFromIPC, tableToIPC, type Data, type DataType } from 'apache-arrow';
import { crc32 } from 'node:zlib';
import { DecodeError, ProtocolError } from './errors.ts';

// Integrity trailer after the stream's end-of-stream marker: 'AFC1' + CRC-32 of the stream.
// Arrow readers stop at the end-of-stream marker, so the bytes stay a valid Arrow IPC stream for
// any other tool (pyarrow, arrow-rs); our decoder checks the CRC first because apache-arrow can
// loop for minutes on a stream with a flipped bit in a flatbuffer length.
const TRAILER_MAGIC = 0x31434641; // 'AFC1' little-endian
const TRAILER_BYTES = 8;

function withTrailer(stream: Uint8Array): Uint8Array {
  const out = new Uint8Array(stream.length + TRAILER_BYTES);
  out.set(stream);
  const view = new DataView(out.buffer);
  view.setUint32(stream.length, TRAILER_MAGIC, true);
  view.setUint32(stream.length + 4, crc32(stream) >>> 0, true);
  return out;
}

function checkedStream(kind: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length < TRAILER_BYTES) throw new DecodeError(kind, 'shorter than the integrity trailer');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length - TRAILER_BYTES;
  if (view.getUint32(end, true) !== TRAILER_MAGIC) throw new DecodeError(kind, 'missing integrity trailer (truncated, or not an actorflow batch)');
  const stream = bytes.subarray(0, end);
  if (crc32(stream) >>> 0 !== view.getUint32(end + 4, true)) throw new DecodeError(kind, 'checksum mismatch: the batch is corrupt');
  return stream;
}

export interface RatingsBatch {
  readonly user: Int32Array;
  readonly item: Int32Array;
  readonly rating: Float32Array;
}

/** Per-user interaction rows in CSR form: user u's items are items[offsets[u] … offsets[u+1]). */
export interface InteractionsBatch {
  readonly user: Int32Array;
  /** user.length + 1 offsets into items/values. */
  readonly offsets: Int32Array;
  readonly items: Int32Array;
  readonly values: Float32Array;
}

export const IMAGE_PIXELS = 784;

export interface ImageBatch {
  /** n × 784 floats, row-major. */
  readonly pixels: Float32Array;
  readonly label: Int32Array;
}

const int32 = (): Int32 => new Int32();
const float32 = (): Float32 => new Float32();

export const ratingsSchema = new Schema([new Field('user', int32(), false), new Field('item', int32(), false), new Field('rating', float32(), false)]);

const itemsType = new List(new Field('item', int32(), false));
const valuesType = new List(new Field('value', float32(), false));
export const interactionsSchema = new Schema([new Field('user', int32(), false), new Field('items', itemsType, false), new Field('values', valuesType, false)]);

const pixelsType = new FixedSizeList(IMAGE_PIXELS, new Field('pixel', float32(), false));
export const imagesSchema = new Schema([new Field('pixels', pixelsType, false), new Field('label', int32(), false)]);

function primitive<T extends DataType>(type: T, data: Int32Array | Float32Array): Data<T> {
  return makeData({ type, length: data.length, data } as never) as Data<T>;
}

function encodeBatch(schema: Schema, length: number, children: Data[]): Uint8Array {
  const structData = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children });
  const batch = new RecordBatch(schema, structData);
  return withTrailer(tableToIPC(new Table([batch]), 'stream'));
}

function sameLength(kind: string, n: number, cols: Record<string, { length: number }>): void {
  for (const [name, col] of Object.entries(cols)) {
    if (col.length !== n) throw new ProtocolError(`${kind}: column ${name} has ${col.length} rows, expected ${n}`);
  }
}

export function encodeRatingsBatch(b: RatingsBatch): Uint8Array {
  const n = b.user.length;
  sameLength('RatingsBatch', n, { item: b.item, rating: b.rating });
  return encodeBatch(ratingsSchema, n, [primitive(int32(), b.user), primitive(int32(), b.item), primitive(float32(), b.rating)]);
}

export function encodeInteractionsBatch(b: InteractionsBatch): Uint8Array {
  const n = b.user.length;
  if (b.offsets.length !== n + 1) throw new ProtocolError(`InteractionsBatch: offsets must have ${n + 1} entries, got ${b.offsets.length}`);
  if (b.items.length !== b.values.length) throw new ProtocolError('InteractionsBatch: items and values differ in length');
  if (b.offsets[0] !== 0 || b.offsets[n] !== b.items.length) throw new ProtocolError('InteractionsBatch: offsets must start at 0 and end at items.length');
  for (let i = 0; i < n; i++) {
    if (b.offsets[i + 1] < b.offsets[i]) throw new ProtocolError(`InteractionsBatch: offsets decrease at row ${i}`);
  }
  const list = (type: List, child: Data): Data => makeData({ type, length: n, nullCount: 0, valueOffsets: b.offsets, child } as never);
  return encodeBatch(interactionsSchema, n, [primitive(int32(), b.user), list(itemsType, primitive(int32(), b.items)), list(valuesType, primitive(float32(), b.values))]);
}

export function encodeImageBatch(b: ImageBatch): Uint8Array {
  const n = b.label.length;
  if (b.pixels.length !== n * IMAGE_PIXELS) {
    throw new ProtocolError(`ImageBatch: ${b.pixels.length} pixels for ${n} labels (expected ${n} × ${IMAGE_PIXELS})`);
  }
  const pixels = makeData({ type: pixelsType, length: n, nullCount: 0, child: primitive(float32(), b.pixels) } as never);
  return encodeBatch(imagesSchema, n, [pixels, primitive(int32(), b.label)]);
}

function readTable(kind: string, bytes: Uint8Array, schema: Schema): Table {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new DecodeError(kind, 'input is empty');
  let table: Table;
  try {
    table = tableFromIPC(checkedStream(kind, bytes));
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError(kind, `not an Arrow IPC stream (${(err as Error).message})`, { cause: err });
  }
  const got = table.schema.fields.map((f) => `${f.name}:${String(f.type)}`).join(', ');
  const want = schema.fields.map((f) => `${f.name}:${String(f.type)}`).join(', ');
  if (got !== want) throw new DecodeError(kind, `schema is (${got}), expected (${want})`);
  for (const f of schema.fields) {
    if ((table.getChild(f.name)?.nullCount ?? 0) > 0) throw new DecodeError(kind, `column ${f.name} has nulls`);
  }
  return table;
}

function concat<T extends Int32Array | Float32Array>(Ctor: { new (n: number): T }, parts: T[]): T {
  if (parts.length === 1) return parts[0];
  const out = new Ctor(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function primitiveColumn<T extends Int32Array | Float32Array>(kind: string, table: Table, name: string, Ctor: { new (n: number): T }): T {
  const vec = table.getChild(name);
  if (vec === null) throw new DecodeError(kind, `missing column ${name}`);
  const parts = vec.data.map((d) => {
    const values = (d.values as T).subarray(0, d.length) as T;
    if (values.length !== d.length) throw new DecodeError(kind, `column ${name} is truncated`);
    return values;
  });
  return concat(Ctor, parts.length > 0 ? parts : [new Ctor(0)]);
}

export function decodeRatingsBatch(bytes: Uint8Array): RatingsBatch {
  const kind = 'RatingsBatch';
  const t = readTable(kind, bytes, ratingsSchema);
  return {
    user: primitiveColumn(kind, t, 'user', Int32Array),
    item: primitiveColumn(kind, t, 'item', Int32Array),
    rating: primitiveColumn(kind, t, 'rating', Float32Array),
  };
}

function listColumn<T extends Int32Array | Float32Array>(kind: string, table: Table, name: string, Ctor: { new (n: number): T }): { offsets: Int32Array; values: T } {
  const vec = table.getChild(name);
  if (vec === null) throw new DecodeError(kind, `missing column ${name}`);
  const offsetParts: Int32Array[] = [];
  const valueParts: T[] = [];
  let base = 0;
  for (const d of vec.data) {
    const offs = d.valueOffsets as Int32Array;
    const child = d.children[0];
    if (offs === undefined || child === undefined || offs.length < d.length + 1) throw new DecodeError(kind, `column ${name} is malformed`);
    const start = offs[0];
    const end = offs[d.length];
    const vals = (child.values as T).subarray(start, end) as T;
    if (start < 0 || end < start || vals.length !== end - start) throw new DecodeError(kind, `column ${name} has bad offsets`);
    const shifted = new Int32Array(d.length);
    for (let i = 0; i < d.length; i++) {
      const o = offs[i + 1];
      if (o < offs[i]) throw new DecodeError(kind, `column ${name} has decreasing offsets`);
      shifted[i] = o - start + base;
    }
    offsetParts.push(shifted);
    valueParts.push(vals);
    base += end - start;
  }
  const offsets = new Int32Array(1 + offsetParts.reduce((s, p) => s + p.length, 0));
  let off = 1;
  for (const p of offsetParts) {
    offsets.set(p, off);
    off += p.length;
  }
  return { offsets, values: concat(Ctor, valueParts.length > 0 ? valueParts : [new Ctor(0)]) };
}

export function decodeInteractionsBatch(bytes: Uint8Array): InteractionsBatch {
  const kind = 'InteractionsBatch';
  const t = readTable(kind, bytes, interactionsSchema);
  const user = primitiveColumn(kind, t, 'user', Int32Array);
  const items = listColumn(kind, t, 'items', Int32Array);
  const values = listColumn(kind, t, 'values', Float32Array);
  if (items.offsets.length !== values.offsets.length || items.offsets.some((o, i) => o !== values.offsets[i])) {
    throw new DecodeError(kind, 'items and values lists differ in shape');
  }
  return { user, offsets: items.offsets, items: items.values, values: values.values };
}

export function decodeImageBatch(bytes: Uint8Array): ImageBatch {
  const kind = 'ImageBatch';
  const t = readTable(kind, bytes, imagesSchema);
  const vec = t.getChild('pixels');
  if (vec === null) throw new DecodeError(kind, 'missing column pixels');
  const parts = vec.data.map((d) => {
    const child = d.children[0];
    const start = d.offset * IMAGE_PIXELS;
    const vals = (child?.values as Float32Array | undefined)?.subarray(start, start + d.length * IMAGE_PIXELS);
    if (vals === undefined || vals.length !== d.length * IMAGE_PIXELS) throw new DecodeError(kind, 'pixels column is truncated');
    return vals;
  });
  return { pixels: concat(Float32Array, parts.length > 0 ? parts : [new Float32Array(0)]), label: primitiveColumn(kind, t, 'label', Int32Array) };
}
