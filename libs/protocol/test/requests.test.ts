// The JSON control requests: an empty payload is "no options", a bad field is named.
import t from 'tap';
import { DecodeError, datasetInfoCodec, evalNowRequestCodec, stateRequestCodec, testSetRequestCodec, type DatasetInfo } from '../mod.ts';

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

t.test('dataset info: validated, bad fields named, additions kept; test-set requests default to ratings', async (t) => {
  const info = { kind: 'images', numUsers: 0, numItems: 0, trainRows: 60, testRows: 10, globalMean: 0, shards: 1, batchSize: 32, epochs: 1, numClasses: 10 };
  t.same(datasetInfoCodec.decode(datasetInfoCodec.encode(info as DatasetInfo)), info);
  t.equal((datasetInfoCodec.decode(enc.encode(JSON.stringify({ ...info, future: 1 }))) as DatasetInfo & { future?: number }).future, 1);
  for (const [patch, re] of [
    [{ kind: 'graphs' }, /kind/],
    [{ trainRows: -1 }, /trainRows/],
    [{ globalMean: 'x' }, /globalMean/],
    [{ ratingRange: [5, 1] }, /ratingRange/],
    [{ ratingRange: [1] }, /ratingRange/],
    [{ shards: 0 }, /shards/],
  ] as const) {
    const err = t.throws(() => datasetInfoCodec.decode(enc.encode(JSON.stringify({ ...info, ...patch }))));
    t.ok(err instanceof DecodeError, JSON.stringify(patch));
    t.match((err as Error).message, re);
  }
  t.same(testSetRequestCodec.decode(new Uint8Array(0)), {});
  t.same(testSetRequestCodec.decode(testSetRequestCodec.encode({ kind: 'validation' })), { kind: 'validation' });
  t.throws(() => testSetRequestCodec.decode(enc.encode('{"kind":3}')), /kind/);
});
