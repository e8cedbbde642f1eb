// PsClient across a broker restart (real nats-server, SIGKILLed and restarted on the same port)
// and across a parameter shard restarted from an older checkpoint (BAD_VERSION → dropped push).
import t from 'tap';
import { NatsServer, connect, serveLarge, type NatsConnection } from '@actorflow/bus';
import { BiasedMF, type StepResult } from '@actorflow/models';
import { decodeGradient, pullReplyCodec, pullRequestCodec, pushReplyCodec, subjects } from '@actorflow/protocol';
import { ParameterShard, PsClient, psStatsSubject, servePsShard } from '../mod.ts';

const optimizer = { name: 'sgd', lr: 0.1 } as const;
const makeModel = (): BiasedMF => new BiasedMF({ numUsers: 8, numItems: 8, dim: 2, initStd: 0.1, globalMean: 3 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A gradient on user row 1 and the global mean. */
const gradient = (): StepResult => ({
  loss: 1,
  count: 1,
  sparse: { user: { rows: Int32Array.of(1), values: Float32Array.of(0.5, -0.5) } },
  dense: { mean: Float32Array.of(0.25) },
});

/** A nats-server that is SIGKILLed and brought back on the same port. */
class Broker {
  #server: NatsServer;
  private constructor(server: NatsServer) {
    this.#server = server;
  }
  static async start(): Promise<Broker> {
    return new Broker(await NatsServer.start());
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
    this.#server = await NatsServer.start({ port: this.#server.port });
  }
  stop(): Promise<void> {
    return this.#server.stop();
  }
}

/**
 * A real ParameterShard behind a tiny deduping front: a push whose pushId was applied is answered
 * with the first reply and applies nothing (as the shard itself does once it dedupes).
 */
function serveDeduping(nc: NatsConnection, job: string, ps: ParameterShard, onPushApplied: (call: number) => Promise<void>): { pushIds: string[] } {
  const replies = new Map<string, Uint8Array>();
  const pushIds: string[] = [];
  serveLarge(nc, subjects.psPull(job, 0), (payload) => {
    const req = pullRequestCodec.decode(payload);
    return pullReplyCodec.encode(ps.pull(req.tables, req.dense));
  });
  serveLarge(nc, psStatsSubject(job, 0), () => new TextEncoder().encode(JSON.stringify(ps.stats)));
  serveLarge(nc, subjects.psPushAny(job, 0), async (payload) => {
    const g = decodeGradient(payload);
    pushIds.push(g.pushId ?? '(none)');
    const seen = g.pushId !== undefined ? replies.get(g.pushId) : undefined;
    if (seen !== undefined) return seen;
    const reply = pushReplyCodec.encode(ps.push({ sparse: g.sparse, dense: g.dense }, g.paramVersion, g.rank));
    if (g.pushId !== undefined) replies.set(g.pushId, reply);
    await onPushApplied(pushIds.length);
    return reply;
  });
  return { pushIds };
}

t.test('a push whose reply is lost with the broker is retried with the same pushId and applied once; pulls ride out the outage', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const trainer = await connect({ servers: [broker.url] });
  const shardNc = await connect({ servers: [broker.url] });
  t.teardown(async () => {
    await trainer.close();
    await shardNc.close();
  });
  const ps = new ParameterShard({ model: makeModel(), shard: 0, of: 1, seed: 3, optimizer });
  let killed: () => void = () => undefined;
  const wasKilled = new Promise<void>((r) => (killed = r));
  const front = serveDeduping(shardNc, 'pj', ps, async (call) => {
    if (call === 1) {
      // Applied, but the reply goes down with the broker.
      await broker.kill();
      killed();
    }
  });
  await shardNc.flush();
  const lines: string[] = [];
  const client = new PsClient(trainer, { job: 'pj', shards: 1, rank: 2, timeoutMs: 30_000, retry: { deadlineMs: 45_000 }, log: (l) => lines.push(l) });

  await client.pull({ user: Int32Array.of(1) }, ['mean']);
  const pushing = client.push(0, gradient(), 2);
  await wasKilled;
  await sleep(1500);
  await broker.restart();
  const [reply] = await pushing;
  t.equal(reply.accepted, true, 'the push was accepted');
  t.equal(reply.version, 1, 'the reply of the one application');
  t.equal(ps.stats.pushes, 1, 'applied exactly once');
  t.equal(front.pushIds.length, 2, 'the shard saw the push twice');
  t.equal(front.pushIds[0], front.pushIds[1], 'with the same pushId');
  t.match(front.pushIds[0], /^2:[0-9a-f]+:0$/, 'pushId = rank:incarnation:seq');
  t.ok(client.counters.retries >= 1, `${client.counters.retries} retry(ies) counted`);
  t.ok(
    lines.some((l) => /parameter shard 0: retrying pj\.ps\.0\.push/.test(l)),
    'the retry is logged',
  );

  // Down between requests: the pull waits for the broker, then the next push has a new id.
  await broker.kill();
  const pulling = client.pull({ user: Int32Array.of(1) }, ['mean']);
  await sleep(1000);
  await broker.restart();
  const params = await pulling;
  t.equal(params.tables.user.values.length, 2, 'the pull completed after the restart');
  const [second] = await client.push(1, gradient(), 2);
  t.equal(second.accepted, true);
  t.equal(ps.stats.pushes, 2);
  t.match(front.pushIds.at(-1), /^2:[0-9a-f]+:1$/, 'the next push, the next seq');
  const stats = await client.stats();
  t.equal(stats[0].pushes, 2, 'stats retried too (and answered)');
});

t.test('a shard restarted from an older checkpoint: BAD_VERSION pushes are counted as dropped, logged once, and the next pull catches up', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const before = new ParameterShard({ model: makeModel(), shard: 0, of: 1, seed: 3, optimizer });
  let subs = servePsShard(nc, 'bv', before);
  await nc.flush();
  const lines: string[] = [];
  const client = new PsClient(nc, { job: 'bv', shards: 1, retry: { deadlineMs: 10_000 }, log: (l) => lines.push(l) });
  for (let step = 0; step < 3; step++) {
    await client.pull({ user: Int32Array.of(1) }, ['mean']);
    await client.push(step, gradient(), 0);
  }
  await client.pull({ user: Int32Array.of(1) }, ['mean']); // at version 3
  // The shard "restarts" at version 0 (an older checkpoint).
  for (const s of subs) s.unsubscribe();
  const after = new ParameterShard({ model: makeModel(), shard: 0, of: 1, seed: 3, optimizer });
  subs = servePsShard(nc, 'bv', after);
  await nc.flush();
  t.teardown(() => subs.forEach((s) => s.unsubscribe()));
  const [dropped] = await client.push(3, gradient(), 0);
  t.same(dropped, { version: 3, staleness: 0, accepted: false, reason: 'BAD_VERSION' }, 'a dropped push, not an error');
  await client.push(4, gradient(), 0);
  t.same(client.counters.droppedPushes, [2], 'two dropped pushes counted');
  t.equal(lines.filter((l) => l.includes('BAD_VERSION')).length, 1, 'logged once');
  t.equal(after.stats.pushes, 0, 'nothing applied');
  await client.pull({ user: Int32Array.of(1) }, ['mean']);
  const [ok] = await client.push(5, gradient(), 0);
  t.equal(ok.accepted, true, 'after the next pull, pushes apply again');
  t.equal(after.stats.pushes, 1);
});
