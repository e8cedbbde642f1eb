// msgpack codec (msgpackr). Float32Array, Int32Array, Float64Array and Uint8Array travel as
// msgpack extension 0x74 carrying the raw little-endian bytes, so tensors never pass through
// JS number arrays on either side.
import { Packr } from 'msgpackr';
import { DecodeError, ProtocolError } from './errors.ts';

// useRecords off: plain msgpack maps, readable by any msgpack implementation.
// moreTypes on: every typed array kind (incl. Uint8Array) uses the typed-array extension.
const packr = new Packr({ useRecords: false, moreTypes: true, mapsAsObjects: true });

export function encodeMsg(value: unknown): Uint8Array {
  try {
    return packr.pack(value);
  } catch (err) {
    throw new ProtocolError(`cannot encode value as msgpack: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decodes one msgpack value that must span the whole buffer. Rejects reserved bytes and trailing
 * garbage, which msgpackr would otherwise turn into placeholder objects or ignore.
 */
export function decodeMsg(bytes: Uint8Array, kind = 'msgpack message'): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(kind, 'input is not a Uint8Array');
  if (bytes.length === 0) throw new DecodeError(kind, 'input is empty');
  const values: unknown[] = [];
  try {
    packr.unpackMultiple(bytes, (v: unknown) => {
      values.push(v);
      return values.length <= 1; // stop at a second value: it is trailing garbage
    });
  } catch (err) {
    throw new DecodeError(kind, (err as Error).message || 'malformed msgpack', { cause: err });
  }
  if (values.length !== 1) throw new DecodeError(kind, 'trailing bytes after the message');
  assertPlain(values[0], kind, '$');
  return values[0];
}

const TYPED = [Float32Array, Float64Array, Int32Array, Uint8Array] as const;

// msgpackr represents reserved bytes / unknown extensions as special objects; reject them so a
// decoder never hands out something that is not plain data.
function assertPlain(v: unknown, kind: string, path: string): void {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'function' || typeof v === 'symbol') throw new DecodeError(kind, `unsupported value at ${path}`);
    return;
  }
  if (TYPED.some((T) => v instanceof T)) return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertPlain(x, kind, `${path}[${i}]`));
    return;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new DecodeError(kind, `unsupported msgpack value at ${path} (${(v as object).constructor?.name ?? 'unknown'})`);
  }
  for (const [k, x] of Object.entries(v)) assertPlain(x, kind, `${path}.${k}`);
}
