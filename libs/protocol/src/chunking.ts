// Messages larger than the server's max_payload travel as numbered chunks. Each chunk carries
// the message id, its index, the chunk count, the total size and a CRC-32 of the whole payload,
// so the receiver can tell a complete message from a missing, duplicated or corrupt one.
import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ChunkError, DecodeError } from './errors.ts';

export interface Chunk {
  readonly id: string;
  readonly index: number;
  readonly count: number;
  readonly totalBytes: number;
  /** CRC-32 of the whole payload. */
  readonly checksum: number;
  readonly data: Uint8Array;
}

// Fixed binary header: magic(2) version(1) idLen(1) index(4) count(4) totalBytes(4) checksum(4) id(idLen).
const MAGIC0 = 0x41; // 'A'
const MAGIC1 = 0x43; // 'C'
const VERSION = 1;
const FIXED_HEADER = 20;
const MAX_ID_BYTES = 64;

/** Bytes an encoded chunk adds to its data, at most (fixed header + longest id). */
export const CHUNK_OVERHEAD_BYTES = FIXED_HEADER + MAX_ID_BYTES;

export function splitIntoChunks(payload: Uint8Array, maxChunkBytes: number, id: string = randomUUID()): Chunk[] {
  if (!Number.isInteger(maxChunkBytes) || maxChunkBytes < 1) {
    throw new ChunkError(id, `maxChunkBytes must be a positive integer, got ${maxChunkBytes}`);
  }
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new ChunkError(id, `id is longer than ${MAX_ID_BYTES} bytes`);
  const count = Math.max(1, Math.ceil(payload.length / maxChunkBytes));
  const checksum = crc32(payload);
  const chunks: Chunk[] = [];
  for (let index = 0; index < count; index++) {
    const data = payload.subarray(index * maxChunkBytes, Math.min(payload.length, (index + 1) * maxChunkBytes));
    chunks.push({ id, index, count, totalBytes: payload.length, checksum, data });
  }
  return chunks;
}

export function encodeChunk(chunk: Chunk): Uint8Array {
  const idBytes = Buffer.from(chunk.id, 'utf8');
  if (idBytes.length > MAX_ID_BYTES) throw new ChunkError(chunk.id, `id is longer than ${MAX_ID_BYTES} bytes`);
  const out = new Uint8Array(FIXED_HEADER + idBytes.length + chunk.data.length);
  const view = new DataView(out.buffer);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VERSION;
  out[3] = idBytes.length;
  view.setUint32(4, chunk.index, true);
  view.setUint32(8, chunk.count, true);
  view.setUint32(12, chunk.totalBytes, true);
  view.setUint32(16, chunk.checksum >>> 0, true);
  out.set(idBytes, FIXED_HEADER);
  out.set(chunk.data, FIXED_HEADER + idBytes.length);
  return out;
}

export function decodeChunk(bytes: Uint8Array): Chunk {
  if (!(bytes instanceof Uint8Array) || bytes.length < FIXED_HEADER) throw new DecodeError('Chunk', 'shorter than the chunk header');
  if (bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) throw new DecodeError('Chunk', 'bad magic bytes (not a chunk)');
  if (bytes[2] !== VERSION) throw new DecodeError('Chunk', `unsupported chunk version ${bytes[2]}`);
  const idLen = bytes[3];
  if (idLen === 0 || idLen > MAX_ID_BYTES || bytes.length < FIXED_HEADER + idLen) throw new DecodeError('Chunk', 'bad id length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const index = view.getUint32(4, true);
  const count = view.getUint32(8, true);
  const totalBytes = view.getUint32(12, true);
  const checksum = view.getUint32(16, true);
  if (count === 0 || index >= count) throw new DecodeError('Chunk', `index ${index} out of range for ${count} chunks`);
  let id: string;
  try {
    id = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED_HEADER, FIXED_HEADER + idLen));
  } catch {
    throw new DecodeError('Chunk', 'id is not UTF-8');
  }
  const data = bytes.subarray(FIXED_HEADER + idLen);
  if (data.length > totalBytes) throw new DecodeError('Chunk', `chunk data (${data.length} B) exceeds the message size (${totalBytes} B)`);
  return { id, index, count, totalBytes, checksum, data };
}

/** A chunked message announcing more bytes than the receiver accepts: refused at its first chunk, nothing held. */
export class MessageTooLargeError extends ChunkError {
  constructor(
    messageId: string,
    readonly announcedBytes: number,
    readonly maxBytes: number,
  ) {
    super(messageId, `message of ${announcedBytes} B exceeds the reassembly bound of ${maxBytes} B; refused at its first chunk (raise maxMessageBytes / maxPendingBytes if the model needs it)`);
    this.name = 'MessageTooLargeError';
  }
}

interface Pending {
  readonly count: number;
  readonly totalBytes: number;
  readonly checksum: number;
  readonly parts: (Uint8Array | undefined)[];
  received: number;
  bytes: number;
  readonly firstSeen: number;
}

export interface ChunkAssemblerOptions {
  /** Upper bound on bytes held for incomplete messages (default 256 MiB). */
  readonly maxPendingBytes?: number;
  /** Largest single message accepted; a first chunk announcing more is refused with MessageTooLargeError (default: maxPendingBytes). */
  readonly maxMessageBytes?: number;
  /** Upper bound on incomplete messages held at once (default 1024). */
  readonly maxPendingMessages?: number;
  /** An incomplete message older than this is dropped by expire() (default 30 s). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

/**
 * Reassembles chunked messages. Memory is bounded: when a new message would exceed the limits,
 * the oldest incomplete messages are evicted and reported by `evicted`; a message that alone is
 * larger than the bound is refused with a ChunkError.
 */
export class ChunkAssembler {
  readonly #pending = new Map<string, Pending>();
  readonly #maxBytes: number;
  readonly #maxMessages: number;
  readonly #maxMessageBytes: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #pendingBytes = 0;
  /** Ids of incomplete messages evicted to stay within the memory bound (drained by the caller). */
  readonly evicted: string[] = [];

  constructor(opts: ChunkAssemblerOptions = {}) {
    this.#maxBytes = opts.maxPendingBytes ?? 256 * 1024 * 1024;
    this.#maxMessages = opts.maxPendingMessages ?? 1024;
    this.#maxMessageBytes = Math.min(opts.maxMessageBytes ?? this.#maxBytes, this.#maxBytes);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get pendingMessages(): number {
    return this.#pending.size;
  }

  /** Adds a chunk; returns the whole payload when the message is complete and its checksum matches. */
  add(chunk: Chunk): Uint8Array | undefined {
    if (chunk.totalBytes > this.#maxMessageBytes) throw new MessageTooLargeError(chunk.id, chunk.totalBytes, this.#maxMessageBytes);
    if (chunk.count === 1) {
      this.#verify(chunk.id, chunk.data, chunk.totalBytes, chunk.checksum);
      return chunk.data;
    }
    let p = this.#pending.get(chunk.id);
    if (p === undefined) {
      if (chunk.totalBytes > this.#maxMessageBytes) throw new MessageTooLargeError(chunk.id, chunk.totalBytes, this.#maxMessageBytes);
      p = {
        count: chunk.count,
        totalBytes: chunk.totalBytes,
        checksum: chunk.checksum,
        parts: new Array<Uint8Array | undefined>(chunk.count),
        received: 0,
        bytes: 0,
        firstSeen: this.#now(),
      };
      this.#pending.set(chunk.id, p);
    } else if (p.count !== chunk.count || p.totalBytes !== chunk.totalBytes || p.checksum !== chunk.checksum) {
      this.#drop(chunk.id);
      throw new ChunkError(chunk.id, `chunk ${chunk.index} disagrees with earlier chunks about count/size/checksum`);
    }
    if (p.parts[chunk.index] !== undefined) return undefined; // duplicate delivery: ignore
    // Copy: the chunk's data may alias a transport buffer that is reused.
    p.parts[chunk.index] = chunk.data.slice();
    p.received++;
    p.bytes += chunk.data.length;
    this.#pendingBytes += chunk.data.length;
    if (p.bytes > p.totalBytes) {
      this.#drop(chunk.id);
      throw new ChunkError(chunk.id, `chunks carry more than the announced ${p.totalBytes} B`);
    }
    if (p.received === p.count) {
      this.#drop(chunk.id);
      const whole = new Uint8Array(p.totalBytes);
      let off = 0;
      for (const part of p.parts) {
        whole.set(part as Uint8Array, off);
        off += (part as Uint8Array).length;
      }
      if (off !== p.totalBytes) throw new ChunkError(chunk.id, `reassembled ${off} B, announced ${p.totalBytes} B`);
      this.#verify(chunk.id, whole, p.totalBytes, p.checksum);
      return whole;
    }
    this.#enforceBounds(chunk.id);
    return undefined;
  }

  /** Drops incomplete messages older than the timeout; returns their ids with the missing chunk indices. */
  expire(): { id: string; missing: number[] }[] {
    const now = this.#now();
    const out: { id: string; missing: number[] }[] = [];
    for (const [id, p] of this.#pending) {
      if (now - p.firstSeen >= this.#timeoutMs) {
        const missing: number[] = [];
        for (let i = 0; i < p.count; i++) if (p.parts[i] === undefined) missing.push(i);
        out.push({ id, missing });
        this.#drop(id);
      }
    }
    return out;
  }

  /** The error to report for an expired message. */
  static missingError(id: string, missing: readonly number[]): ChunkError {
    const shown = missing.slice(0, 10).join(', ') + (missing.length > 10 ? ', …' : '');
    return new ChunkError(id, `incomplete: ${missing.length} chunk(s) never arrived (indices ${shown})`);
  }

  #verify(id: string, data: Uint8Array, totalBytes: number, checksum: number): void {
    if (data.length !== totalBytes) throw new ChunkError(id, `size ${data.length} B differs from the announced ${totalBytes} B`);
    if (crc32(data) >>> 0 !== checksum >>> 0) throw new ChunkError(id, 'checksum mismatch: the message is corrupt');
  }

  #drop(id: string): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pendingBytes -= p.bytes;
    this.#pending.delete(id);
  }

  #enforceBounds(current: string): void {
    // Map iteration order is insertion order: the first entries are the oldest messages.
    for (const id of this.#pending.keys()) {
      if (this.#pendingBytes <= this.#maxBytes && this.#pending.size <= this.#maxMessages) return;
      if (id === current) continue;
      this.#drop(id);
      this.evicted.push(id);
    }
    if (this.#pendingBytes > this.#maxBytes) {
      this.#drop(current);
      throw new ChunkError(current, `reassembly memory bound of ${this.#maxBytes} B exceeded`);
    }
  }
}
