// Row frames (the ps push and pull reply): round trips, either-encoding decoders, hostile input
// (every rejection is a DecodeError naming the reason), and random / truncated / bit-flipped bytes.
import t from 'tap';
import {
  DecodeError,
  ProtocolError,
  decodeGradient,
  decodeGradientFrame,
  decodePullReply,
  decodePullReplyFrame,
  encodeGradientFrame,
  encodeMsg,
  encodePullReplyFrame,
  gradientCodec,
  isRowFrame,
  pullReplyCodec,
  type GradientMessage,
  type PullReply,
} from '../mod.ts';

const grad: GradientMessage = {
  job: 'j1',
  rank: 1,
  step: 7,
  paramVersion: 3,
  count: 5001,
  loss: 0.25,
  dense: { mean: new Float32Array([0.5]) },
  sparse: {
    user: { rows: new Int32Array([0, 4, 9]), values: new Float32Array([1, 2, 3, 4, 5, 6]) },
    item: { rows: new Int32Array([2]), values: new Float32Array([-1.5, 7]) },
    empty: { rows: new Int32Array(0), values: new Float32Array(0) },
  },
  pushId: '1:0:7',
};
const reply: PullReply = {
  version: 12,
  tables: { user: { rows: new Int32Array([3, 1]), values: new Float32Array([1, 2, 3, 4, 5, 6]), dim: 3 } },
  dense: { mean: new Float32Array([3.5]), w: new Float32Array(0) },
};

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (ArrayBuffer.isView(x) ? [x.constructor.name, ...Array.from(x as Float32Array)] : x))) as unknown;

t.test('round trips, and both decoders read both encodings', (t) => {
  const g = encodeGradientFrame(grad);
  t.ok(isRowFrame(g));
  t.notOk(isRowFrame(gradientCodec.encode(grad)), 'msgpack never looks like a frame');
  t.same(plain(decodeGradientFrame(g)), plain(grad));
  t.same(plain(decodeGradient(g)), plain(grad));
  t.same(plain(decodeGradient(gradientCodec.encode(grad))), plain(grad));
  const { pushId: _drop, ...noId } = grad;
  t.notOk('pushId' in decodeGradientFrame(encodeGradientFrame(noId)));
  const p = encodePullReplyFrame(reply);
  t.same(plain(decodePullReplyFrame(p)), plain(reply));
  t.same(plain(decodePullReply(p)), plain(reply));
  t.same(plain(decodePullReply(pullReplyCodec.encode(reply))), plain(reply));
  // At an odd offset (views need alignment): copied, same values.
  const odd = new Uint8Array(p.length + 1);
  odd.set(p, 1);
  t.same(plain(decodePullReplyFrame(odd.subarray(1))), plain(reply));
  // Bit-exact floats, incl. -0 and subnormals.
  const bits = new Float32Array([-0, 1e-45, 3.4028234663852886e38]);
  const back = decodePullReplyFrame(encodePullReplyFrame({ version: 0, tables: {}, dense: { x: bits } })).dense.x;
  t.same(Array.from(new Uint32Array(back.buffer, back.byteOffset, 3)), Array.from(new Uint32Array(bits.buffer)));
  t.end();
});

t.test('encoders refuse inconsistent blocks', (t) => {
  t.throws(() => encodeGradientFrame({ ...grad, sparse: { u: { rows: new Int32Array([1, 2]), values: new Float32Array(3) } } }), ProtocolError);
  t.throws(() => encodePullReplyFrame({ version: 0, tables: { u: { rows: new Int32Array([1]), values: new Float32Array(3), dim: 2 } }, dense: {} }), ProtocolError);
  t.end();
});

// A frame with a hand-made header (to say what a hostile sender could).
function frame(kind: 'G' | 'P', header: unknown, body: Uint8Array = new Uint8Array(0), headerLen?: number): Uint8Array {
  const head = encodeMsg(header);
  const start = (8 + head.length + 3) & ~3;
  const out = new Uint8Array(start + body.length);
  out.set([0xc1, 0x41, 0x46, kind.charCodeAt(0)]);
  new DataView(out.buffer).setUint32(4, headerLen ?? head.length, true);
  out.set(head, 8);
  out.set(body, start);
  return out;
}
const g0 = { job: 'j', rank: 0, step: 0, paramVersion: 0, count: 1, loss: 0 };
const f32 = (...v: number[]): Uint8Array => new Uint8Array(new Float32Array(v).buffer);
const i32 = (...v: number[]): Uint8Array => new Uint8Array(new Int32Array(v).buffer);
const cat = (...a: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of a) out.set(x, (at += x.length) - x.length);
  return out;
};

t.test('hostile frames are DecodeErrors that say why', (t) => {
  const bad: [string, () => unknown, RegExp][] = [
    ['too short', () => decodeGradientFrame(new Uint8Array([0xc1, 0x41])), /shorter/],
    ['bad magic', () => decodeGradientFrame(new Uint8Array(16)), /magic/],
    ['wrong kind', () => decodePullReplyFrame(encodeGradientFrame(grad)), /kind/],
    ['header past the end', () => decodeGradientFrame(frame('G', { ...g0, t: [], d: [] }, new Uint8Array(0), 1 << 30)), /header length/],
    ['header not a map', () => decodeGradientFrame(frame('G', [1, 2])), /not a map/],
    ['no directory', () => decodeGradientFrame(frame('G', g0)), /'t' must be an array/],
    ['count too big for the frame', () => decodeGradientFrame(frame('G', { ...g0, t: [['u', 1000, 4]], d: [] }, cat(i32(1), f32(1, 2, 3, 4)))), /describes/],
    ['trailing bytes', () => decodeGradientFrame(frame('G', { ...g0, t: [], d: [] }, new Uint8Array(4))), /describes/],
    ['negative count', () => decodeGradientFrame(frame('G', { ...g0, t: [['u', -1, 4]], d: [] })), /count/],
    ['huge count', () => decodeGradientFrame(frame('G', { ...g0, t: [['u', 2 ** 40, 2 ** 40]], d: [] })), /count/],
    ['fractional dim', () => decodeGradientFrame(frame('G', { ...g0, t: [['u', 1, 1.5]], d: [] })), /dim/],
    ['zero dim', () => decodeGradientFrame(frame('G', { ...g0, t: [['u', 0, 0]], d: [] })), /dim/],
    [
      'duplicate table',
      () =>
        decodeGradientFrame(
          frame('G', {
            ...g0,
            t: [
              ['u', 0, 1],
              ['u', 0, 1],
            ],
            d: [],
          }),
        ),
      /repeated/,
    ],
    ['__proto__ table', () => decodeGradientFrame(frame('G', { ...g0, t: [['__proto__', 0, 1]], d: [] })), /reserved/],
    ['empty name', () => decodeGradientFrame(frame('G', { ...g0, t: [], d: [['', 0]] })), /name/],
    ['too many blocks', () => decodeGradientFrame(frame('G', { ...g0, t: [], d: Array.from({ length: 5000 }, (_, i) => [`d${i}`, 0]) })), /at most/],
    ['negative row', () => decodeGradientFrame(frame('G', { ...g0, t: [['u', 1, 1]], d: [] }, cat(i32(-5), f32(1)))), /negative/],
    ['bad rank', () => decodeGradientFrame(frame('G', { ...g0, rank: -1, t: [], d: [] })), /rank/],
    ['bad version', () => decodeGradientFrame(frame('G', { ...g0, paramVersion: 1.5, t: [], d: [] })), /paramVersion/],
    ['no job', () => decodeGradientFrame(frame('G', { ...g0, job: 3, t: [], d: [] })), /job/],
    ['long pushId', () => decodeGradientFrame(frame('G', { ...g0, pushId: 'x'.repeat(200), t: [], d: [] })), /pushId/],
    ['NaN in a pulled row', () => decodePullReplyFrame(frame('P', { version: 0, t: [['u', 1, 2]], d: [] }, cat(i32(0), f32(1, Number.NaN)))), /NaN/],
    ['Infinity in pulled dense', () => decodePullReplyFrame(frame('P', { version: 0, t: [], d: [['m', 1]] }, f32(Number.POSITIVE_INFINITY))), /Infinity/],
    ['bad pull version', () => decodePullReplyFrame(frame('P', { version: 'x', t: [], d: [] })), /version/],
  ];
  for (const [what, run, message] of bad) {
    let caught: unknown;
    try {
      run();
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof DecodeError && message.test(caught.message), `${what}: ${String(caught)}`);
  }
  // A hand-made frame that is valid decodes.
  const ok = decodeGradientFrame(frame('G', { ...g0, t: [['u', 1, 2]], d: [] }, cat(i32(4), f32(1, 2))));
  t.same(plain(ok), plain({ ...g0, dense: {}, sparse: { u: { rows: new Int32Array([4]), values: new Float32Array([1, 2]) } } }));
  t.end();
});

t.test('fuzz: random, truncated and bit-flipped frames throw only ProtocolErrors', (t) => {
  let seed = 99;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const samples = [encodeGradientFrame(grad), encodePullReplyFrame(reply)];
  const decoders = [decodeGradient, decodePullReply, decodeGradientFrame, decodePullReplyFrame];
  let tried = 0;
  const attempt = (b: Uint8Array): void => {
    for (const d of decoders) {
      tried++;
      try {
        d(b);
      } catch (err) {
        if (!(err instanceof ProtocolError)) t.fail(`${d.name} threw ${(err as Error).constructor.name}: ${(err as Error).message}`);
      }
    }
  };
  for (const s of samples) {
    for (let n = 0; n < s.length; n++) attempt(s.subarray(0, n));
    for (let k = 0; k < 400; k++) {
      const b = s.slice();
      for (let f = 0; f < 1 + Math.floor(rand() * 3); f++) b[Math.floor(rand() * b.length)] ^= 1 << Math.floor(rand() * 8);
      attempt(b);
    }
  }
  for (let k = 0; k < 300; k++) {
    const b = new Uint8Array(Math.floor(rand() * 64));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
    if (b.length >= 3 && rand() < 0.7) b.set([0xc1, 0x41, 0x46]);
    attempt(b);
  }
  t.ok(tried > 1000);
  t.end();
});
