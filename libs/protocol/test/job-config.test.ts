// The job configuration's codec: round trip, the protocol version check, validation that names the
// field, and fields of a newer build kept.
import t from 'tap';
import { DecodeError, PROTOCOL_VERSION, ProtocolVersionError, jobConfigCodec, type JobConfig } from '../mod.ts';

const config: JobConfig = {
  job: 'job-1',
  strategy: 'mirrored',
  worldSize: 2,
  model: 'neumf',
  hyper: { dim: 8, layers: '64,32', numUsers: 100, numItems: 50, dropout: false },
  optimizer: { name: 'adam', lr: 0.002, l2: 0, dense: true },
  psShards: 1,
  staleness: 'none',
  seed: 7,
};
const enc = new TextEncoder();
const json = (o: unknown): Uint8Array => enc.encode(JSON.stringify(o));

t.test('round trip carries the protocol version on the wire, not in the value', async (t) => {
  const bytes = jobConfigCodec.encode(config);
  t.equal((JSON.parse(new TextDecoder().decode(bytes)) as { protocol: number }).protocol, PROTOCOL_VERSION);
  t.same(jobConfigCodec.decode(bytes), config);
});

t.test('another protocol version is refused with a ProtocolVersionError that says what to do', async (t) => {
  for (const protocol of [PROTOCOL_VERSION + 1, undefined, '1']) {
    const err = t.throws(() => jobConfigCodec.decode(json({ ...config, protocol })));
    t.ok(err instanceof ProtocolVersionError, `protocol ${String(protocol)}`);
    t.match((err as Error).message, /run the same actorflow version on every actor/);
  }
});

t.test('bad fields are named', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ strategy: 'ring' }, /strategy/],
    [{ worldSize: 0 }, /worldSize/],
    [{ optimizer: { name: 'lamb', lr: 0.1 } }, /optimizer\.name/],
    [{ optimizer: { name: 'adam', lr: -1 } }, /optimizer\.lr/],
    [{ optimizer: { name: 'adam', lr: 0.1, l2: 'x' } }, /optimizer\.l2/],
    [{ hyper: { dim: [1] } }, /hyper\.dim/],
    [{ psShards: 1.5 }, /psShards/],
    [{ job: 3 }, /job/],
  ];
  for (const [patch, re] of cases) {
    const err = t.throws(() => jobConfigCodec.decode(json({ ...config, ...patch, protocol: PROTOCOL_VERSION })));
    t.ok(err instanceof DecodeError, JSON.stringify(patch));
    t.match((err as Error).message, re);
  }
});

t.test('fields a newer build adds are kept', async (t) => {
  const got = jobConfigCodec.decode(json({ ...config, protocol: PROTOCOL_VERSION, validation: 0.05 })) as JobConfig & { validation?: number };
  t.equal(got.validation, 0.05);
});
