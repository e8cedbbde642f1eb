import t from 'tap';
import fc from 'fast-check';
import { CHUNK_OVERHEAD_BYTES, ChunkAssembler, ChunkError, DecodeError, decodeChunk, encodeChunk, splitIntoChunks } from '../mod.ts';

const payloadOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

t.test('split, encode, decode, reassemble in any order', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1, max: 700 }), fc.integer(), (n, max, seed) => {
      const payload = payloadOf(n);
      const chunks = splitIntoChunks(payload, max).map((c) => encodeChunk(c));
      for (const c of chunks) if (c.length > max + CHUNK_OVERHEAD_BYTES) return false;
      // deterministic shuffle
      const order = chunks.map((_, i) => i).sort((a, b) => (((a * 2654435761 + seed) >>> 0) % 97) - (((b * 2654435761 + seed) >>> 0) % 97));
      const asm = new ChunkAssembler();
      let whole: Uint8Array | undefined;
      for (const i of order) {
        const r = asm.add(decodeChunk(chunks[i]));
        if (r !== undefined) whole = r;
      }
      return whole !== undefined && Buffer.compare(Buffer.from(whole), Buffer.from(payload)) === 0 && asm.pendingBytes === 0;
    }),
  );
  t.pass('random sizes reassemble');
});

t.test('duplicates are ignored', async (t) => {
  const chunks = splitIntoChunks(payloadOf(100), 30);
  const asm = new ChunkAssembler();
  t.equal(asm.add(chunks[0]), undefined);
  t.equal(asm.add(chunks[0]), undefined);
  t.equal(asm.add(chunks[1]), undefined);
  t.equal(asm.add(chunks[2]), undefined);
  t.same(asm.add(chunks[3]), payloadOf(100));
});

t.test('a missing chunk is reported by expire with its index', async (t) => {
  let now = 0;
  const asm = new ChunkAssembler({ timeoutMs: 1000, now: () => now });
  const chunks = splitIntoChunks(payloadOf(100), 30, 'msg-1');
  asm.add(chunks[0]);
  asm.add(chunks[2]);
  now = 999;
  t.same(asm.expire(), []);
  now = 1000;
  const expired = asm.expire();
  t.same(expired, [{ id: 'msg-1', missing: [1, 3] }]);
  t.equal(asm.pendingBytes, 0);
  const err = ChunkAssembler.missingError('msg-1', [1, 3]);
  t.ok(err instanceof ChunkError);
  t.match(err.message, /2 chunk\(s\) never arrived \(indices 1, 3\)/);
});

t.test('corruption is caught by the checksum', async (t) => {
  const chunks = splitIntoChunks(payloadOf(100), 60);
  const bad = { ...chunks[1], data: chunks[1].data.slice() };
  bad.data[0] ^= 0xff;
  const asm = new ChunkAssembler();
  asm.add(chunks[0]);
  t.throws(() => asm.add(bad), /checksum mismatch/);
  const single = splitIntoChunks(payloadOf(10), 100)[0];
  t.throws(() => new ChunkAssembler().add({ ...single, checksum: single.checksum ^ 1 }), ChunkError);
});

t.test('inconsistent chunks are rejected', async (t) => {
  const a = splitIntoChunks(payloadOf(100), 30, 'same');
  const b = splitIntoChunks(payloadOf(90), 30, 'same');
  const asm = new ChunkAssembler();
  asm.add(a[0]);
  t.throws(() => asm.add(b[1]), /disagrees/);
});

t.test('memory is bounded: oldest incomplete messages are evicted, oversize refused', async (t) => {
  const asm = new ChunkAssembler({ maxPendingBytes: 250 });
  for (let m = 0; m < 10; m++) asm.add(splitIntoChunks(payloadOf(200), 100, `m${m}`)[0]);
  t.ok(asm.pendingBytes <= 250, `pending ${asm.pendingBytes} B`);
  t.ok(asm.evicted.length >= 8);
  t.throws(() => asm.add(splitIntoChunks(payloadOf(400), 100, 'big')[0]), /exceeds the reassembly bound/);
  const few = new ChunkAssembler({ maxPendingMessages: 2 });
  for (let m = 0; m < 5; m++) few.add(splitIntoChunks(payloadOf(20), 10, `n${m}`)[0]);
  t.equal(few.pendingMessages, 2);
});

t.test('bad arguments and bad bytes', async (t) => {
  t.throws(() => splitIntoChunks(payloadOf(1), 0), ChunkError);
  t.throws(() => splitIntoChunks(payloadOf(1), 10, 'x'.repeat(65)), /longer than/);
  t.throws(() => decodeChunk(new Uint8Array(5)), DecodeError);
  const good = encodeChunk(splitIntoChunks(payloadOf(10), 100, 'id')[0]);
  const badMagic = good.slice();
  badMagic[0] = 0;
  t.throws(() => decodeChunk(badMagic), /magic/);
  const badVersion = good.slice();
  badVersion[2] = 9;
  t.throws(() => decodeChunk(badVersion), /version/);
  const badIndex = good.slice();
  new DataView(badIndex.buffer).setUint32(4, 5, true);
  t.throws(() => decodeChunk(badIndex), /out of range/);
});

t.test('a chunked message announcing more than maxMessageBytes is refused at its first chunk', async (t) => {
  const { ChunkAssembler: A, MessageTooLargeError: TooLarge, splitIntoChunks: split } = await import('../mod.ts');
  const a = new A({ maxMessageBytes: 1000 });
  const chunks = split(new Uint8Array(5000), 100);
  t.throws(() => a.add(chunks[0]), TooLarge);
  t.equal(a.pendingBytes, 0, 'nothing held');
  t.equal(a.pendingMessages, 0);
  // A forged single chunk announcing 4 GiB of total size is refused the same way.
  t.throws(() => a.add({ ...chunks[0], count: 1, totalBytes: 2 ** 32 - 1 }), /exceeds the reassembly bound of 1000 B/);
  const ok = split(new Uint8Array(900).fill(3), 100);
  let whole: Uint8Array | undefined;
  for (const c of ok) whole = a.add(c) ?? whole;
  t.equal(whole?.length, 900, 'a message within the bound reassembles');
});
