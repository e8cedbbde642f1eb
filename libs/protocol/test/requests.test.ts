// The JSON control requests: an empty payload is "no options", a bad field is named.
import t from 'tap';
import { DecodeError, evalNowRequestCodec, stateRequestCodec } from '../mod.ts';

const enc = new TextEncoder();

t.test('empty payloads decode to no options; values round-trip', async (t) => {
  t.same(evalNowRequestCodec.decode(new Uint8Array(0)), {});
  t.same(stateRequestCodec.decode(new Uint8Array(0)), {});
  t.same(evalNowRequestCodec.decode(evalNowRequestCodec.encode({ final: true })), { final: true });
  t.same(stateRequestCodec.decode(stateRequestCodec.encode({ after: 7 })), { after: 7 });
  t.same(stateRequestCodec.decode(enc.encode('{"after":null}')), {});
  t.same(stateRequestCodec.decode(enc.encode('{"after":-1}')), { after: -1 }, 'the first poll asks for anything');
});

t.test('bad requests are refused with the field named', async (t) => {
  for (const [codec, body, re] of [
    [evalNowRequestCodec, '{"final":"yes"}', /final/],
    [stateRequestCodec, '{"after":-2}', /after/],
    [stateRequestCodec, '{"after":1.5}', /after/],
    [stateRequestCodec, '[1]', /not a map/],
    [evalNowRequestCodec, 'not json', /JSON/],
  ] as const) {
    const err = t.throws(() => codec.decode(enc.encode(body)));
    t.ok(err instanceof DecodeError, body);
    t.match((err as Error).message, re);
  }
});
