import t from 'tap';
import fc from 'fast-check';
import { DecodeError, IMAGE_PIXELS, ProtocolError, decodeImageBatch, decodeInteractionsBatch, decodeRatingsBatch, encodeImageBatch, encodeInteractionsBatch, encodeRatingsBatch } from '../mod.ts';

t.test('ratings round-trip (random, incl. empty)', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e6 }), fc.float({ noNaN: true })), { maxLength: 200 }), (rows) => {
      const b = {
        user: Int32Array.from(rows, (r) => r[0]),
        item: Int32Array.from(rows, (r) => r[1]),
        rating: Float32Array.from(rows, (r) => r[2]),
      };
      const back = decodeRatingsBatch(encodeRatingsBatch(b));
      return back.user.join() === b.user.join() && back.item.join() === b.item.join() && back.rating.join() === b.rating.join();
    }),
  );
  t.pass();
});

t.test('interactions (CSR lists) round-trip', async (t) => {
  const b = {
    user: new Int32Array([4, 7, 9]),
    offsets: new Int32Array([0, 2, 2, 5]),
    items: new Int32Array([1, 2, 3, 4, 5]),
    values: new Float32Array([1, 1, 0.5, 1, 1]),
  };
  t.same(decodeInteractionsBatch(encodeInteractionsBatch(b)), b);
  t.throws(() => encodeInteractionsBatch({ ...b, offsets: new Int32Array([0, 3, 2, 5]) }), /decrease/);
  t.throws(() => encodeInteractionsBatch({ ...b, offsets: new Int32Array([0, 5]) }), ProtocolError);
});

t.test('images round-trip', async (t) => {
  const n = 3;
  const b = { pixels: Float32Array.from({ length: n * IMAGE_PIXELS }, (_, i) => (i % 255) / 255), label: new Int32Array([7, 1, 0]) };
  const back = decodeImageBatch(encodeImageBatch(b));
  t.same(back.label, b.label);
  t.same(back.pixels, b.pixels);
  t.throws(() => encodeImageBatch({ pixels: new Float32Array(10), label: new Int32Array(1) }), /784/);
});

t.test('a batch of another kind is a DecodeError naming the schema', async (t) => {
  const ratings = encodeRatingsBatch({ user: new Int32Array([1]), item: new Int32Array([2]), rating: new Float32Array([3]) });
  t.throws(() => decodeImageBatch(ratings), DecodeError);
  t.throws(() => decodeImageBatch(ratings), /schema is \(user:Int32/);
  t.throws(() => decodeRatingsBatch(new Uint8Array(0)), /empty/);
  t.throws(() => encodeRatingsBatch({ user: new Int32Array(2), item: new Int32Array(1), rating: new Float32Array(2) }), /column item/);
});
