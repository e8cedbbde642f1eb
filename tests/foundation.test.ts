// Integration: the foundation libs together over a real nats-server — a synthetic dataset is
// loaded, split and batched (data), encoded as Arrow batches (protocol), and served by a
// request/reply service over a server whose max_payload forces chunking (bus).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { NatsServer, connect, requestLarge, serveLarge } from '@actorflow/bus';
import { batchRequestCodec, decodeRatingsBatch, encodeRatingsBatch, subjects } from '@actorflow/protocol';
import { EpochIterator, randomSplit, syntheticRatings, takeBatch } from '@actorflow/data';

t.test('batches of a synthetic dataset travel over NATS as chunked Arrow and arrive intact', async (t) => {
  const server = await NatsServer.start({ maxPayload: 16 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const data = syntheticRatings('small', 7);
  const { train } = randomSplit(data.ratings, { seed: 7 });
  const epochs = new EpochIterator({ rows: train.length, batchSize: 4096, seed: 7 });
  const batches = [...epochs.batches(0)];
  let served = 0;
  serveLarge(nc, subjects.dataNext('itest', 0), (payload) => {
    const req = batchRequestCodec.decode(payload);
    const idx = batches[served++ % batches.length];
    t.equal(req.job, 'itest');
    return encodeRatingsBatch(takeBatch(train, idx));
  });
  await nc.flush();
  for (let k = 0; k < 3; k++) {
    const reply = await requestLarge(nc, subjects.dataNext('itest', 0), batchRequestCodec.encode({ job: 'itest', rank: 0, worldSize: 1, epoch: 0 }), { timeoutMs: 10_000 });
    t.ok(reply.length > 16 * 1024, `reply of ${reply.length} B needed chunking`);
    const batch = decodeRatingsBatch(reply);
    const expected = takeBatch(train, batches[k]);
    t.same(batch.user, expected.user);
    t.same(batch.rating, expected.rating);
  }
});

t.test('nx lists the libraries', async (t) => {
  const out = execFileSync('npx', ['nx', 'show', 'projects'], { encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' } });
  for (const lib of ['protocol', 'bus', 'data']) t.match(out, new RegExp(`^${lib}$`, 'm'));
});
