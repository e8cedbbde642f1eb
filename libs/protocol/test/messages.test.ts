import t from 'tap';
import fc from 'fast-check';
import { DecodeError, ProtocolError, batchRequestCodec, decodeMsg, encodeMsg, evalReportCodec, gradientCodec, lossReportCodec, monitoringHeaders, pullReplyCodec, pullRequestCodec } from '../mod.ts';
import { examples } from './fixtures/examples.ts';

const f32 = (...v: number[]): Float32Array => new Float32Array(v);
const i32 = (...v: number[]): Int32Array => new Int32Array(v);

t.test('every kind round-trips', async (t) => {
  for (const [codec, msg] of examples) {
    t.same(codec.decode(codec.encode(msg)), msg, codec.kind);
  }
});

t.test('typed arrays travel as binary, not number arrays', async (t) => {
  const values = new Float32Array(10_000).fill(1.25);
  const bytes = encodeMsg({ values });
  t.ok(bytes.length < 10_000 * 4 + 64, `encoded size ${bytes.length} is ~4 bytes a float`);
  const back = decodeMsg(bytes) as { values: Float32Array };
  t.ok(back.values instanceof Float32Array);
  t.equal(back.values.length, 10_000);
  const i = decodeMsg(encodeMsg(new Int32Array([-1, 2 ** 31 - 1])));
  t.ok(i instanceof Int32Array);
  const d = decodeMsg(encodeMsg(new Float64Array([Math.PI])));
  t.ok(d instanceof Float64Array);
});

t.test('validation rejects wrong shapes with a DecodeError naming the field', async (t) => {
  const bad = encodeMsg({ job: 'j', rank: 0, step: 0, paramVersion: 0, count: 1, loss: 0, dense: {}, sparse: { user: { rows: i32(1, 2), values: f32(1, 2, 3) } } });
  t.throws(() => gradientCodec.decode(bad), DecodeError);
  t.throws(() => gradientCodec.decode(bad), /do not divide/);
  t.throws(() => gradientCodec.decode(encodeMsg({ job: 3 })), /field 'job' must be a string/);
  t.throws(() => pullReplyCodec.decode(encodeMsg({ version: 1, tables: { a: { rows: i32(1), values: f32(1, 2), dim: 3 } }, dense: {} })), /dim 3/);
  t.throws(() => batchRequestCodec.decode(encodeMsg({ job: 'j', rank: 2, worldSize: 2, epoch: 0 })), /not below worldSize/);
  t.throws(() => batchRequestCodec.decode(encodeMsg({ job: 'j', rank: 0, worldSize: 1, epoch: 0, kind: 'pixels' })), /kind must be one of ratings, user-rows, item-rows, images, got 'pixels'/);
  t.throws(() => pullRequestCodec.decode(encodeMsg({ job: 'j', rank: 0, tables: { a: [1, 2] }, dense: [] })), /Int32Array/);
  t.throws(() => lossReportCodec.decode(new Uint8Array([0xff, 0xfe])), DecodeError);
  t.throws(() => evalReportCodec.decode(new TextEncoder().encode('[1]')), /not a map/);
  t.throws(() => decodeMsg(new Uint8Array([0xc1])), DecodeError, 'reserved msgpack byte');
  t.throws(() => decodeMsg(new Uint8Array(0)), /empty/);
  t.throws(() => decodeMsg(new Uint8Array([0x01, 0x02])), /trailing/);
});

t.test('loss reports: JSON readable by a person, NaN survives as null, headers carry the job', async (t) => {
  const bytes = lossReportCodec.encode({ job: 'j', rank: 0, step: 1, epoch: 0, loss: Number.NaN, examples: 1, examplesPerSec: 1, strategy: 'ps', backend: 'cpu', ts: 1 });
  const text = new TextDecoder().decode(bytes);
  t.match(text, /"loss":null/);
  t.ok(Number.isNaN(lossReportCodec.decode(bytes).loss));
  t.same(monitoringHeaders('j'), { 'Content-Type': 'application/json', 'Job-Id': 'j' });
});

t.test('encodeMsg reports unencodable values as ProtocolError', async (t) => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  t.throws(() => encodeMsg(circular), ProtocolError);
});

t.test('property: gradient messages with random tensors round-trip exactly', async (t) => {
  const floats = fc.float32Array({ maxLength: 64 });
  fc.assert(
    fc.property(
      fc.record({ dim: fc.integer({ min: 1, max: 4 }), rows: fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { maxLength: 16 }), dense: floats, loss: fc.double({ noNaN: true }) }),
      ({ dim, rows, dense, loss }) => {
        const values = new Float32Array(rows.length * dim).map((_, k) => (k * 0.37) % 5);
        const msg = { job: 'p', rank: 0, step: 1, paramVersion: 0, count: rows.length, loss, dense: { w: dense }, sparse: { t: { rows: new Int32Array(rows), values } } };
        const back = gradientCodec.decode(gradientCodec.encode(msg));
        // Compare bit patterns so NaN and -0 count too.
        const bits = (a: Float32Array): number[] => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
        return bits(back.dense.w).join() === bits(dense).join() && back.sparse.t.rows.join() === rows.join() && back.loss === loss; /* msgpack writes -0 as integer 0 */
      },
    ),
  );
  t.pass('random gradients round-trip');
});
