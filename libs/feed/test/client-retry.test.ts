// DataClient across broker restarts (a real nats-server, SIGKILLed and restarted on the same port):
// shared mode with a data shard that dedupes by requestId hands out every batch once; distributed
// mode (stateless on the server) yields the uninterrupted sequence, and resumes at a given step.
import t from 'tap';
import { NatsServer, connect, serveLarge } from '@actorflow/bus';
import type { RatingsBatch } from '@actorflow/data';
import { batchReplyCodec, batchRequestCodec, encodeRatingsBatch, subjects } from '@actorflow/protocol';
import { DataClient, loadJobDataset, serveDataShard } from '../mod.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A nats-server that is SIGKILLed and brought back on the same port. */
class Broker {
  #server: NatsServer;
  private constructor(server: NatsServer) {
    this.#server = server;
  }
  static async start(): Promise<Broker> {
    return new Broker(await NatsServer.start({ maxPayload: 64 * 1024 }));
  }
  get url(): string {
    return this.#server.url;
  }
  async kill(): Promise<void> {
    process.kill(this.#server.pid, 'SIGKILL');
    await this.#server.exited;
    await this.#server.stop();
  }
  async restart(): Promise<void> {
    this.#server = await NatsServer.start({ port: this.#server.port, maxPayload: 64 * 1024 });
  }
  stop(): Promise<void> {
    return this.#server.stop();
  }
}

const keys = (b: RatingsBatch): string[] => Array.from(b.user, (u, i) => `${u}:${b.item[i]}`);

t.test('shared mode: the broker dies while a batch is on its way back; the retry (same requestId) gets that batch, none is lost or doubled', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const client = await connect({ servers: [broker.url] });
  const shardNc = await connect({ servers: [broker.url] });
  t.teardown(async () => {
    await client.close();
    await shardNc.close();
  });
  // A tiny shard: 6 batches of 2 ratings, one epoch; a retried requestId gets the batch it got first.
  const batches: RatingsBatch[] = Array.from({ length: 6 }, (_, i) => ({ user: Int32Array.of(2 * i, 2 * i + 1), item: Int32Array.of(i, i), rating: Float32Array.of(1, 2) }));
  let next = 0;
  let calls = 0;
  const ids: string[] = [];
  const answers = new Map<string, Uint8Array>();
  let killed: () => void = () => undefined;
  const wasKilled = new Promise<void>((r) => (killed = r));
  serveLarge(shardNc, subjects.dataNext('sj', 0), async (payload) => {
    calls++;
    const req = batchRequestCodec.decode(payload);
    ids.push(req.requestId ?? '(none)');
    const seen = req.requestId !== undefined ? answers.get(req.requestId) : undefined;
    if (seen !== undefined) return seen;
    const i = next++;
    const reply = batchReplyCodec.encode(
      i < batches.length
        ? { epoch: 0, index: i, endOfEpoch: false, endOfData: false, arrow: encodeRatingsBatch(batches[i]) }
        : { epoch: 0, index: i, endOfEpoch: true, endOfData: true, arrow: new Uint8Array(0) },
    );
    if (req.requestId !== undefined) answers.set(req.requestId, reply);
    if (i === 2) {
      // This batch was handed out; its reply goes down with the broker.
      await broker.kill();
      killed();
    }
    return reply;
  });
  await shardNc.flush();
  const data = new DataClient(client, { job: 'sj', shards: 1, retry: { deadlineMs: 60_000 } });
  const restarted = (async () => {
    await wasKilled;
    await sleep(1500);
    await broker.restart();
  })();
  const got: string[] = [];
  for await (const { batch } of data.shared()) got.push(...keys(batch));
  await restarted;
  t.same(got, batches.flatMap(keys), 'every batch once, in order');
  t.equal(next, batches.length + 1, 'the shard handed out each batch once (and the end)');
  t.equal(calls, batches.length + 2, 'one request was retried');
  t.equal(ids[2], ids[3], 'with the same requestId');
  t.equal(new Set(ids).size, batches.length + 1, 'every other request has its own id');
  t.ok(data.retries >= 1, `${data.retries} retry(ies) counted`);
});

t.test('distributed mode across a broker restart yields the uninterrupted sequence; start resumes at a global step', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const client = await connect({ servers: [broker.url] });
  const shardNc = await connect({ servers: [broker.url] });
  t.teardown(async () => {
    await client.close();
    await shardNc.close();
  });
  const dataset = await loadJobDataset({ source: 'synthetic:tiny', seed: 9 });
  const shards = [0, 1].map((shard) => serveDataShard(shardNc, { job: 'dj', shard, of: 2, dataset, batchSize: 200, epochs: 2, seed: 9 }));
  t.teardown(() => shards.forEach((s) => s.stop()));
  await shardNc.flush();
  const data = new DataClient(client, { job: 'dj', shards: 2, retry: { deadlineMs: 60_000 } });
  const read = async (start?: { epoch: number; step: number }): Promise<{ epoch: number; keys: string[] }[]> => {
    const out: { epoch: number; keys: string[] }[] = [];
    for await (const { epoch, batch } of data.distributed(0, 1, { kind: 'ratings' }, start)) out.push({ epoch, keys: keys(batch) });
    return out;
  };
  const clean = await read();
  const perEpoch = clean.filter((b) => b.epoch === 0).length;
  t.ok(perEpoch > 4 && clean.length === 2 * perEpoch, `two epochs of ${perEpoch} steps`);

  // Resume: global step 3 of epoch 0, and step 0 / step 2 of epoch 1.
  t.same(await read({ epoch: 0, step: 3 }), clean.slice(3), 'from step 3 of epoch 0');
  t.same(await read({ epoch: 1, step: 0 }), clean.slice(perEpoch), 'from the start of epoch 1');
  t.same(await read({ epoch: 1, step: 2 }), clean.slice(perEpoch + 2), 'from step 2 of epoch 1');

  // The broker goes away after the third batch and comes back 1 s later.
  const got: { epoch: number; keys: string[] }[] = [];
  for await (const { epoch, batch } of data.distributed(0, 1)) {
    got.push({ epoch, keys: keys(batch) });
    if (got.length === 3) {
      await broker.kill();
      setTimeout(() => void broker.restart(), 1000);
    }
  }
  t.same(got, clean, 'the same sequence as without the outage');

  // info and the test set ride out an outage too.
  await broker.kill();
  const info = data.info();
  const test = data.testSet();
  await sleep(1000);
  await broker.restart();
  t.equal((await info).trainRows, dataset.train.length);
  t.equal((await test).length, dataset.test.length);
});

t.test('waitForInfo keeps waiting for a shard that is not up yet, telling onWait, and gives up with a clear error', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const data = new DataClient(nc, { job: 'nobody', shards: 1 });
  let waits = 0;
  const err = await data
    .waitForInfo(1200, () => waits++)
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  t.ok(waits >= 1, `${waits} wait(s) reported`);
  t.match((err as Error).message, /nobody\.data\.info: no answer after \d+ attempt\(s\).*no service is listening on nobody\.data\.info/);
});
