// TensorFlow event files, the subset TensorBoard's scalar dashboard reads: TFRecord framing
// (uint64 length, masked CRC-32C of the length, data, masked CRC-32C of the data; little endian)
// around `Event` protobufs:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first record of a file carries file_version "brain.Event:2". Decoding skips every other field
// (TensorFlow's own writers add source_metadata, tensors, plugin data …).
import { readFileSync } from 'node:fs';
import { maskedCrc32c } from './crc32c.ts';
import { TensorBoardError } from './errors.ts';

export const FILE_VERSION = 'brain.Event:2';

export interface ScalarValue {
  readonly tag: string;
  readonly value: number;
}

export interface TfEvent {
  readonly wallTime: number;
  readonly step: number;
  readonly fileVersion?: string;
  /** simple_value entries of the event's summary (other value kinds are skipped). */
  readonly values?: readonly ScalarValue[];
}

// --- protobuf writing -------------------------------------------------------------------------

class ProtoWriter {
  readonly #parts: Uint8Array[] = [];
  #len = 0;

  #push(b: Uint8Array): void {
    this.#parts.push(b);
    this.#len += b.length;
  }

  varint(v: number): void {
    // Non-negative integers up to 2^53; plain arithmetic (bit operators would cut at 32 bits).
    const out: number[] = [];
    let x = v;
    while (x >= 0x80) {
      out.push((x % 0x80) | 0x80);
      x = Math.floor(x / 0x80);
    }
    out.push(x);
    this.#push(Uint8Array.from(out));
  }

  key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  double(field: number, v: number): void {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.#push(b);
  }

  float(field: number, v: number): void {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#push(b);
  }

  bytes(field: number, b: Uint8Array): void {
    this.key(field, 2);
    this.varint(b.length);
    this.#push(b);
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#len);
    let o = 0;
    for (const p of this.#parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** The protobuf bytes of one Event. */
export function encodeEvent(e: TfEvent): Uint8Array {
  if (!Number.isFinite(e.wallTime)) throw new TensorBoardError(`event wall time ${e.wallTime} is not a finite number of seconds`);
  if (!Number.isSafeInteger(e.step) || e.step < 0) throw new TensorBoardError(`event step ${e.step} must be a non-negative integer (≤ 2^53)`);
  const w = new ProtoWriter();
  w.double(1, e.wallTime);
  w.key(2, 0);
  w.varint(e.step);
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.values !== undefined) {
    const summary = new ProtoWriter();
    for (const v of e.values) {
      const value = new ProtoWriter();
      value.string(1, v.tag);
      value.float(2, v.value);
      summary.bytes(1, value.finish());
    }
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** One TFRecord: length, masked CRC of the length, data, masked CRC of the data. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// --- reading ----------------------------------------------------------------------------------

class ProtoReader {
  #o = 0;
  constructor(
    readonly b: Uint8Array,
    readonly where: string,
  ) {}

  get done(): boolean {
    return this.#o >= this.b.length;
  }

  #need(n: number): void {
    if (this.#o + n > this.b.length) throw new TensorBoardError(`${this.where}: protobuf truncated at byte ${this.#o} (needs ${n} more)`);
  }

  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      this.#need(1);
      const byte = this.b[this.#o++];
      v += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return v;
      mul *= 0x80;
    }
    throw new TensorBoardError(`${this.where}: varint longer than 10 bytes at byte ${this.#o}`);
  }

  double(): number {
    this.#need(8);
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.#o, 8).getFloat64(0, true);
    this.#o += 8;
    return v;
  }

  float(): number {
    this.#need(4);
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.#o, 4).getFloat32(0, true);
    this.#o += 4;
    return v;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    this.#need(n);
    const v = this.b.subarray(this.#o, this.#o + n);
    this.#o += n;
    return v;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.double();
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.float();
    else throw new TensorBoardError(`${this.where}: unsupported protobuf wire type ${wire} at byte ${this.#o}`);
  }
}

function decodeValue(b: Uint8Array, where: string): ScalarValue | undefined {
  const r = new ProtoReader(b, where);
  let tag = '';
  let value: number | undefined;
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === 2) tag = new TextDecoder().decode(r.bytes());
    else if (field === 2 && wire === 5) value = r.float();
    else r.skip(wire);
  }
  return value === undefined ? undefined : { tag, value };
}

/** Decodes one Event's protobuf bytes (simple_value scalars only; other fields skipped). */
export function decodeEvent(b: Uint8Array, where = 'event'): TfEvent {
  const r = new ProtoReader(b, where);
  let wallTime = 0;
  let step = 0;
  let fileVersion: string | undefined;
  let values: ScalarValue[] | undefined;
  while (!r.done) {
    const key = r.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 1 && wire === 1) wallTime = r.double();
    else if (field === 2 && wire === 0) step = r.varint();
    else if (field === 3 && wire === 2) fileVersion = new TextDecoder().decode(r.bytes());
    else if (field === 5 && wire === 2) {
      const s = new ProtoReader(r.bytes(), `${where} summary`);
      values ??= [];
      while (!s.done) {
        const k = s.varint();
        if (Math.floor(k / 8) === 1 && k % 8 === 2) {
          const v = decodeValue(s.bytes(), `${where} summary value`);
          if (v !== undefined) values.push(v);
        } else s.skip(k % 8);
      }
    } else r.skip(wire);
  }
  return { wallTime, step, ...(fileVersion !== undefined ? { fileVersion } : {}), ...(values !== undefined ? { values } : {}) };
}

/** Splits TFRecord bytes into records, verifying both CRCs of each. */
export function readRecords(bytes: Uint8Array, where = 'records'): Uint8Array[] {
  const out: Uint8Array[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  while (o < bytes.length) {
    if (o + 12 > bytes.length) throw new TensorBoardError(`${where}: truncated record header at byte ${o} (a writer still running, or a cut file)`);
    const len = Number(view.getBigUint64(o, true));
    if (view.getUint32(o + 8, true) !== maskedCrc32c(bytes.subarray(o, o + 8))) throw new TensorBoardError(`${where}: record length CRC mismatch at byte ${o}: the file is corrupt`);
    if (o + 16 + len > bytes.length) throw new TensorBoardError(`${where}: truncated record at byte ${o} (${len} data bytes announced, ${bytes.length - o - 16} present)`);
    const data = bytes.subarray(o + 12, o + 12 + len);
    if (view.getUint32(o + 12 + len, true) !== maskedCrc32c(data)) throw new TensorBoardError(`${where}: record data CRC mismatch at byte ${o}: the file is corrupt`);
    out.push(data);
    o += 16 + len;
  }
  return out;
}

/** Every event of one event file, in order, CRCs verified. */
export function readEventFile(path: string): TfEvent[] {
  return readRecords(readFileSync(path), path).map((r, i) => decodeEvent(r, `${path} record ${i}`));
}
