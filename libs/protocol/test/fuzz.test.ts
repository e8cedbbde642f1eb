// Random, truncated and bit-flipped bytes into every decoder: each either returns a value or
// throws a ProtocolError — never a TypeError/RangeError from inside a parser, never a hang.
import t from 'tap';
import {
  IMAGE_PIXELS,
  ProtocolError,
  decodeChunk,
  decodeImageBatch,
  decodeInteractionsBatch,
  decodeMsg,
  decodeRatingsBatch,
  encodeChunk,
  encodeImageBatch,
  encodeInteractionsBatch,
  encodeRatingsBatch,
  splitIntoChunks,
} from '../mod.ts';
import { examples } from './fixtures/examples.ts';

let seed = 12345;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

const decoders: [string, (b: Uint8Array) => unknown, Uint8Array][] = [
  ...examples.map(([c, m]) => [c.kind, (b: Uint8Array) => c.decode(b), c.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
  ['msgpack', (b) => decodeMsg(b), examples[3][0].encode(examples[3][1])],
  ['chunk', decodeChunk, encodeChunk(splitIntoChunks(new Uint8Array(50).fill(3), 100, 'c')[0])],
  ['ratings', decodeRatingsBatch, encodeRatingsBatch({ user: new Int32Array([1, 2]), item: new Int32Array([3, 4]), rating: new Float32Array([5, 1]) })],
  ['interactions', decodeInteractionsBatch, encodeInteractionsBatch({ user: new Int32Array([1]), offsets: new Int32Array([0, 2]), items: new Int32Array([1, 2]), values: new Float32Array([1, 1]) })],
  ['images', decodeImageBatch, encodeImageBatch({ pixels: new Float32Array(IMAGE_PIXELS), label: new Int32Array([3]) })],
];

function tryDecode(t: Tap.Test, name: string, decode: (b: Uint8Array) => unknown, bytes: Uint8Array, what: string): void {
  try {
    decode(bytes);
  } catch (err) {
    if (!(err instanceof ProtocolError)) t.fail(`${name} threw ${(err as Error).constructor.name} on ${what}: ${(err as Error).message}`);
  }
}

t.test('fuzz every decoder', async (t) => {
  for (const [name, decode, valid] of decoders) {
    for (let cut = 0; cut < valid.length; cut += Math.max(1, Math.floor(valid.length / 200))) {
      tryDecode(t, name, decode, valid.subarray(0, cut), `truncation at ${cut}`);
    }
    for (let k = 0; k < 300; k++) {
      const flipped = valid.slice();
      const pos = Math.floor(rand() * flipped.length);
      flipped[pos] ^= 1 << Math.floor(rand() * 8);
      tryDecode(t, name, decode, flipped, `bit flip at ${pos}`);
    }
    for (let k = 0; k < 200; k++) {
      const random = Uint8Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256));
      tryDecode(t, name, decode, random, 'random bytes');
    }
    t.pass(`${name}: no foreign errors`);
  }
});

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Tap {
    type Test = import('tap').Test;
  }
}
