// The process group's messages (and the rendezvous store's, and the mirrored gradients): round trips, the checks that matter (ranks below the world size,
// integer sequence numbers, parts as bytes), and fuzzed bytes that only ever raise ProtocolError.
import t from 'tap';
import {
  DecodeError,
  ProtocolError,
  collectiveDownCodec,
  collectiveP2pCodec,
  collectiveUpCodec,
  encodeMsg,
  mirroredGradientCodec,
  mirroredParamsCodec,
  storeReplyCodec,
  storeRequestCodec,
  type Codec,
  type CollectiveDown,
  type CollectiveP2p,
  type CollectiveUp,
  type MirroredGradient,
  type StoreReply,
  type StoreRequest,
} from '../mod.ts';

const ups: CollectiveUp[] = [
  { kind: 'data', job: 'j', rank: 1, seq: 7, ack: 6, worldSize: 2, generation: 0, data: new Uint8Array([1, 2, 3]) },
  { kind: 'data', job: 'j', rank: 1, seq: 1, ack: 0, worldSize: 2, data: new Uint8Array(0) },
  { kind: 'ask', job: 'j', rank: 1, seq: 4, ack: 2, worldSize: 2, generation: 1 },
];
const downs: CollectiveDown[] = [
  { kind: 'result', job: 'j', from: 0, seq: 3, worldSize: 2, parts: [new Uint8Array([1]), new Uint8Array(0)] },
  { kind: 'reduced', job: 'j', from: 0, seq: 3, worldSize: 2, generation: 4, data: new Uint8Array([1, 2]) },
  { kind: 'progress', job: 'j', from: 0, seq: 3, worldSize: 3, have: [0, 2] },
  { kind: 'progress', job: 'j', from: 0, seq: 3, worldSize: 3, have: [], resend: true },
  { kind: 'error', job: 'j', from: 0, seq: 5, worldSize: 3, error: 'timeout', op: 'barrier', missing: [1] },
  { kind: 'error', job: 'j', from: 0, seq: 0, worldSize: 3, generation: 1, error: 'world size mismatch' },
];
const p2ps: CollectiveP2p[] = [
  { kind: 'chunk', job: 'j', from: 1, seq: 4, phase: 'rs', step: 1, worldSize: 3, data: new Float32Array([1.5, -2]) },
  { kind: 'ack', job: 'j', from: 2, seq: 4, phase: 'ag', step: 0, worldSize: 3, generation: 9 },
];
const stores: StoreRequest[] = [
  { op: 'set', key: 'rdzv/j/world/g0/rank/1', value: new Uint8Array([1, 2]) },
  { op: 'get', key: 'k' },
  { op: 'add', key: 'n', amount: -3, id: 'a1' },
  { op: 'check', keys: ['a', 'b'] },
  { op: 'delete', key: 'k' },
];
const replies: StoreReply[] = [{}, { value: new Uint8Array([9]) }, { count: 4 }, { missing: ['b'] }, { present: true }];
const grads: MirroredGradient[] = [
  { count: 3, loss: 0.5, dense: { w: new Float32Array([1, 2]) }, sparse: { user: { rows: new Int32Array([4, 7]), values: new Float32Array([1, 2, 3, 4]) } } },
  { count: 0, loss: 0, dense: {}, sparse: {} },
];

t.test('every collective message round-trips', async (t) => {
  for (const m of ups) t.same(collectiveUpCodec.decode(collectiveUpCodec.encode(m)), m, `up ${m.kind}`);
  for (const m of downs) t.same(collectiveDownCodec.decode(collectiveDownCodec.encode(m)), m, `down ${m.kind}`);
  for (const m of p2ps) t.same(collectiveP2pCodec.decode(collectiveP2pCodec.encode(m)), m, `p2p ${m.kind}`);
  for (const m of stores) t.same(storeRequestCodec.decode(storeRequestCodec.encode(m)), m, `store ${m.op}`);
  for (const m of replies) t.same(storeReplyCodec.decode(storeReplyCodec.encode(m)), m, 'store reply');
  for (const m of grads) t.same(mirroredGradientCodec.decode(mirroredGradientCodec.encode(m)), m, 'mirrored gradient');
  const params = { tables: { user: new Float32Array([1, 2, 3, 4]) }, dense: { mean: new Float32Array([3.5]) } };
  t.same(mirroredParamsCodec.decode(mirroredParamsCodec.encode(params)), params, 'mirrored params');
  const r = collectiveDownCodec.decode(collectiveDownCodec.encode(downs[0]));
  t.ok(r.kind === 'result' && r.parts.every((p) => p instanceof Uint8Array), 'parts stay bytes');
});

t.test('malformed messages are refused with a DecodeError naming the field', async (t) => {
  const bad: [Codec<unknown>, unknown, RegExp][] = [
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 2, seq: 1, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'rank' is 2, not below the world size 2/],
    [collectiveUpCodec, { kind: 'data', rank: 1, seq: 1, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'job' must be a string/],
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 0, seq: 1.5, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'seq' must be an integer/],
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 0, seq: 0, ack: 0, worldSize: 2, data: new Uint8Array(0) }, /'seq' must be an integer >= 1/],
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 0, seq: 3, ack: 3, worldSize: 2, data: new Uint8Array(0) }, /'ack'/],
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 0, seq: 3, ack: 1, worldSize: 2, data: [1, 2] }, /data must be a Uint8Array/],
    [collectiveUpCodec, { kind: 'hello', job: 'j', rank: 0, seq: 0, worldSize: 2 }, /'kind'/],
    [collectiveUpCodec, { kind: 'ask', job: 'j', rank: 1, seq: 2, ack: 2, worldSize: 2 }, /'ack'/],
    [collectiveUpCodec, { kind: 'nope', job: 'j', rank: 0, seq: 1, worldSize: 2 }, /'kind'/],
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 0, seq: 1, worldSize: 0 }, /'worldSize'/],
    [collectiveUpCodec, { kind: 'data', job: 'j', rank: 0, seq: 1, worldSize: 2, generation: -1 }, /'generation'/],
    [collectiveDownCodec, { kind: 'result', job: 'j', from: 0, seq: 1, worldSize: 2, parts: [new Uint8Array(0)] }, /array of 2 byte strings/],
    [collectiveDownCodec, { kind: 'result', job: 'j', from: 0, seq: 1, worldSize: 2, parts: [new Uint8Array(0), new Float32Array(1)] }, /parts\[1\] must be a Uint8Array/],
    [collectiveDownCodec, { kind: 'result', job: 'j', seq: 1, worldSize: 2, parts: [] }, /'from'/],
    [collectiveDownCodec, { kind: 'reduced', job: 'j', from: 3, seq: 1, worldSize: 2, data: new Uint8Array(0) }, /'from' is 3/],
    [collectiveDownCodec, { kind: 'reduced', job: 'j', from: 0, seq: 1, worldSize: 2, data: 'x' }, /data must be a Uint8Array/],
    [collectiveDownCodec, { kind: 'progress', job: 'j', from: 0, seq: 1, worldSize: 2, have: [0, 2] }, /'have'/],
    [collectiveDownCodec, { kind: 'progress', job: 'j', from: 0, seq: 1, worldSize: 2, have: [0], resend: 1 }, /'resend' must be a boolean/],
    [collectiveDownCodec, { kind: 'error', job: 'j', from: 0, seq: 1, worldSize: 2, error: 'x', missing: [5] }, /'missing'/],
    [collectiveDownCodec, { kind: 'error', job: 'j', from: 0, seq: 1, worldSize: 2 }, /'error' must be a string/],
    [collectiveDownCodec, { kind: 'welcome', job: 'j', from: 0, seq: 0, worldSize: 2 }, /'kind'/],
    [collectiveP2pCodec, { kind: 'chunk', job: 'j', from: 0, seq: 1, phase: 'xx', step: 0, worldSize: 2, data: new Float32Array(1) }, /'phase'/],
    [collectiveP2pCodec, { kind: 'chunk', job: 'j', from: 0, seq: 1, phase: 'rs', step: 1, worldSize: 2, data: new Float32Array(1) }, /'step' is 1/],
    [collectiveP2pCodec, { kind: 'chunk', job: 'j', from: 0, seq: 1, phase: 'rs', step: 0, worldSize: 2, data: new Uint8Array(4) }, /Float32Array/],
    [collectiveP2pCodec, { kind: 'pong', job: 'j', from: 0, seq: 1, phase: 'rs', step: 0, worldSize: 2 }, /'kind'/],
    [collectiveP2pCodec, { kind: 'ack', job: 7, from: 0, seq: 1, phase: 'rs', step: 0, worldSize: 2 }, /'job'/],
    [storeRequestCodec, { op: 'set', key: '', value: new Uint8Array(0) }, /key must be a non-empty string/],
    [storeRequestCodec, { op: 'set', key: 'k', value: [1] }, /value must be a Uint8Array/],
    [storeRequestCodec, { op: 'add', key: 'k', amount: 0.5, id: 'x' }, /'amount' must be a safe integer/],
    [storeRequestCodec, { op: 'add', key: 'k', amount: 1 }, /id must be/],
    [storeRequestCodec, { op: 'check', keys: 'k' }, /'keys'/],
    [storeRequestCodec, { op: 'check', keys: ['a', 5] }, /keys\[1\]/],
    [storeRequestCodec, { op: 'drop', key: 'k' }, /'op'/],
    [storeReplyCodec, { value: 'x' }, /value must be a Uint8Array/],
    [storeReplyCodec, { missing: 'x' }, /'missing'/],
    [storeReplyCodec, { present: 1 }, /'present'/],
    [mirroredGradientCodec, { count: 1.5, loss: 0, dense: {}, sparse: {} }, /'count'/],
    [mirroredParamsCodec, { tables: { user: [1, 2] }, dense: {} }, /tables\.user must be a Float32Array/],
    [mirroredParamsCodec, { tables: {} }, /dense/],
    [mirroredGradientCodec, { count: 1, loss: 0, dense: { w: [1] }, sparse: {} }, /dense\.w must be a Float32Array/],
    [mirroredGradientCodec, { count: 1, loss: 0, dense: {}, sparse: { u: { rows: new Int32Array([1, 2]), values: new Float32Array(3) } } }, /do not divide/],
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
    ...stores.map((m) => ['store', (b: Uint8Array) => storeRequestCodec.decode(b), storeRequestCodec.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
    ...replies.map((m) => ['reply', (b: Uint8Array) => storeReplyCodec.decode(b), storeReplyCodec.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
    ...grads.map((m) => ['grad', (b: Uint8Array) => mirroredGradientCodec.decode(b), mirroredGradientCodec.encode(m)] as [string, (b: Uint8Array) => unknown, Uint8Array]),
    ['params', (b: Uint8Array) => mirroredParamsCodec.decode(b), mirroredParamsCodec.encode({ tables: { user: new Float32Array([1, 2]) }, dense: { mean: new Float32Array([3]) } })],
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
