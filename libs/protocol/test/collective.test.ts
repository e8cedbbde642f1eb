// The process group's messages: round trips, the checks that matter (ranks below the world size,
// integer sequence numbers, parts as bytes), and fuzzed bytes that only ever raise ProtocolError.
import t from 'tap';
import { DecodeError, ProtocolError, collectiveDownCodec, collectiveP2pCodec, collectiveUpCodec, encodeMsg, type Codec, type CollectiveDown, type CollectiveP2p, type CollectiveUp } from '../mod.ts';

const ups: CollectiveUp[] = [
  { kind: 'hello', rank: 2, seq: 0, worldSize: 3 },
  { kind: 'hello', rank: 0, seq: 0, worldSize: 1, generation: 4 },
  { kind: 'data', rank: 1, seq: 7, ack: 6, worldSize: 2, generation: 0, data: new Uint8Array([1, 2, 3]) },
  { kind: 'data', rank: 1, seq: 1, ack: 0, worldSize: 2, data: new Uint8Array(0) },
  { kind: 'ask', rank: 1, seq: 4, ack: 2, worldSize: 2, generation: 1 },
];
const downs: CollectiveDown[] = [
  { kind: 'welcome', seq: 0, worldSize: 3, generation: 2 },
  { kind: 'result', seq: 3, worldSize: 2, parts: [new Uint8Array([1]), new Uint8Array(0)] },
  { kind: 'progress', seq: 3, worldSize: 3, have: [0, 2] },
  { kind: 'progress', seq: 3, worldSize: 3, have: [], resend: true },
  { kind: 'error', seq: 5, worldSize: 3, error: 'timeout', op: 'barrier', missing: [1] },
  { kind: 'error', seq: 0, worldSize: 3, generation: 1, error: 'world size mismatch' },
];
const p2ps: CollectiveP2p[] = [
  { kind: 'chunk', from: 1, seq: 4, phase: 'rs', step: 1, worldSize: 3, data: new Float32Array([1.5, -2]) },
  { kind: 'ack', from: 2, seq: 4, phase: 'ag', step: 0, worldSize: 3, generation: 9 },
];

t.test('every collective message round-trips', async (t) => {
  for (const m of ups) t.same(collectiveUpCodec.decode(collectiveUpCodec.encode(m)), m, `up ${m.kind}`);
  for (const m of downs) t.same(collectiveDownCodec.decode(collectiveDownCodec.encode(m)), m, `down ${m.kind}`);
  for (const m of p2ps) t.same(collectiveP2pCodec.decode(collectiveP2pCodec.encode(m)), m, `p2p ${m.kind}`);
  const r = collectiveDownCodec.decode(collectiveDownCodec.encode(downs[1]));
  t.ok(r.kind === 'result' && r.parts.every((p) => p instanceof Uint8Array), 'parts stay bytes');
});

t.test('malformed messages are refused with a DecodeError naming the field', async (t) => {
  const bad: [Codec<unknown>, unknown, RegExp][] = [
    [collectiveUpCodec, { kind: 'data', rank: 2, seq: 1, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'rank' is 2, not below the world size 2/],
    [collectiveUpCodec, { kind: 'data', rank: 0, seq: 1.5, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'seq' must be an integer/],
    [collectiveUpCodec, { kind: 'data', rank: 0, seq: 0, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'seq' must be an integer >= 1/],
    [collectiveUpCodec, { kind: 'data', rank: 0, seq: 3, ack: 3, worldSize: 2, data: new Uint8Array(0) }, /'ack'/],
    [collectiveUpCodec, { kind: 'data', rank: 0, seq: 3, ack: 1, worldSize: 2, data: [1, 2] }, /data must be a Uint8Array/],
    [collectiveUpCodec, { kind: 'hello', rank: 0, seq: 1, worldSize: 2 }, /hello has seq 0/],
    [collectiveUpCodec, { kind: 'ask', rank: 1, seq: 2, ack: 2, worldSize: 2 }, /'ack'/],
    [collectiveUpCodec, { kind: 'nope', rank: 0, seq: 1, worldSize: 2 }, /'kind'/],
    [collectiveUpCodec, { kind: 'hello', rank: 0, seq: 0, worldSize: 0 }, /'worldSize'/],
    [collectiveUpCodec, { kind: 'hello', rank: 0, seq: 0, worldSize: 2, generation: -1 }, /'generation'/],
    [collectiveDownCodec, { kind: 'result', seq: 1, worldSize: 2, parts: [new Uint8Array(0)] }, /array of 2 byte strings/],
    [collectiveDownCodec, { kind: 'result', seq: 1, worldSize: 2, parts: [new Uint8Array(0), new Float32Array(1)] }, /parts\[1\] must be a Uint8Array/],
    [collectiveDownCodec, { kind: 'progress', seq: 1, worldSize: 2, have: [0, 2] }, /'have'/],
    [collectiveDownCodec, { kind: 'progress', seq: 1, worldSize: 2, have: [0], resend: 1 }, /'resend' must be a boolean/],
    [collectiveDownCodec, { kind: 'error', seq: 1, worldSize: 2, error: 'x', missing: [5] }, /'missing'/],
    [collectiveDownCodec, { kind: 'error', seq: 1, worldSize: 2 }, /'error' must be a string/],
    [collectiveDownCodec, { kind: 'welcome', seq: 2, worldSize: 2 }, /welcome has seq 0/],
    [collectiveDownCodec, { kind: 'other', seq: 2, worldSize: 2 }, /'kind'/],
    [collectiveP2pCodec, { kind: 'chunk', from: 0, seq: 1, phase: 'xx', step: 0, worldSize: 2, data: new Float32Array(1) }, /'phase'/],
    [collectiveP2pCodec, { kind: 'chunk', from: 0, seq: 1, phase: 'rs', step: 1, worldSize: 2, data: new Float32Array(1) }, /'step' is 1/],
    [collectiveP2pCodec, { kind: 'chunk', from: 0, seq: 1, phase: 'rs', step: 0, worldSize: 2, data: new Uint8Array(4) }, /Float32Array/],
    [collectiveP2pCodec, { kind: 'pong', from: 0, seq: 1, phase: 'rs', step: 0, worldSize: 2 }, /'kind'/],
  ];
  for (const [codec, msg, re] of bad) t.throws(() => codec.decode(encodeMsg(msg)), re, `${codec.kind}: ${re.source}`);
  t.throws(() => collectiveUpCodec.decode(encodeMsg([1, 2])), DecodeError, 'not a map');
});

let seed = 777;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

t.test('fuzzed bytes only ever raise ProtocolError', async (t) => {
  const cases: [string, (b: Uint8Array) => unknown, Uint8Array][] = [
    ...ups.map((m) => ['up', (b: Uint8Array) => collectiveUpCodec.decode(b), collectiveUpCodec.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
    ...downs.map((m) => ['down', (b: Uint8Array) => collectiveDownCodec.decode(b), collectiveDownCodec.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
    ...p2ps.map((m) => ['p2p', (b: Uint8Array) => collectiveP2pCodec.decode(b), collectiveP2pCodec.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
  ];
  let foreign = 0;
  const attempt = (decode: (b: Uint8Array) => unknown, b: Uint8Array): void => {
    try {
      decode(b);
    } catch (err) {
      if (!(err instanceof ProtocolError)) foreign++;
    }
  };
  for (const [, decode, valid] of cases) {
    for (let cut = 0; cut < valid.length; cut++) attempt(decode, valid.subarray(0, cut));
    for (let k = 0; k < 300; k++) {
      const flipped = valid.slice();
      flipped[Math.floor(rand() * flipped.length)] ^= 1 << Math.floor(rand() * 8);
      attempt(decode, flipped);
    }
    for (let k = 0; k < 100; k++)
      attempt(
        decode,
        Uint8Array.from({ length: Math.floor(rand() * 80) }, () => Math.floor(rand() * 256)),
      );
  }
  t.equal(foreign, 0, 'no TypeError/RangeError escapes a decoder');
});
