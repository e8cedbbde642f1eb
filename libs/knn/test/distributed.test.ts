// Similarity blocks over a real nats-server: two workers and the collector in this process, each
// with its own connection. The merged lists must equal a single process's KnnModel.fit exactly.
import t from 'tap';
import { NatsServer, RemoteError, connect, requestLarge } from '@actorflow/bus';
import { DecodeError, encodeMsg } from '@actorflow/protocol';
import { randomSplit, syntheticRatings } from '@actorflow/data';
import {
  KNN_FOREIGN_BLOCK,
  KNN_NOT_READY,
  KnnError,
  KnnModel,
  blocksOfRank,
  collectKnnBlocks,
  computeBlock,
  fetchNeighbours,
  knnBlockAckCodec,
  knnBlockCodec,
  knnPlan,
  knnSubjects,
  neighboursCodec,
  prepareKnn,
  runKnnWorker,
  sendKnnBlock,
  type KnnBlockMessage,
  type KnnOptions,
} from '../mod.ts';

/** The error a promise rejects with (undefined when it resolves). */
const caught = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

const s = syntheticRatings('tiny', 3);
const { train } = randomSplit(s.ratings, { fraction: 0.1, seed: 1 });
const dims = { numUsers: s.numUsers, numItems: s.numItems };
const data = prepareKnn(train, dims);

t.test('codecs: round trips and validation', async (t) => {
  const plan = knnPlan(data, 'item', 4);
  const sb = computeBlock(data, { kind: 'item', similarity: 'pearson', kMax: 10 }, plan[1]);
  const msg: KnnBlockMessage = { ...sb, job: 'j', rank: 1, index: 1, blocks: plan.length, numRows: data.numItems, computeMs: 1.5 };
  const back = knnBlockCodec.decode(knnBlockCodec.encode(msg));
  t.same(back, msg);
  t.ok(back.sims instanceof Float32Array && back.neighbors instanceof Int32Array, 'typed arrays stay typed');
  t.same(knnBlockAckCodec.decode(knnBlockAckCodec.encode({ index: 2, duplicate: true, received: 3, total: 4 })), { index: 2, duplicate: true, received: 3, total: 4 });
  const whole = KnnModel.fit(train, { kind: 'user', similarity: 'cosine', kMax: 5, k: 5 }, dims).neighbours;
  t.same(neighboursCodec.decode(neighboursCodec.encode({ job: 'j', ...whole })), { job: 'j', ...whole });

  const bad = (patch: Record<string, unknown>): Uint8Array => encodeMsg({ ...msg, ...patch });
  t.throws(() => knnBlockCodec.decode(bad({ index: 9 })), /index 9 is not below blocks/);
  t.throws(() => knnBlockCodec.decode(bad({ to: data.numItems + 1 })), /not inside/);
  t.throws(() => knnBlockCodec.decode(bad({ offsets: new Int32Array(2) })), /offsets has 2 entries/);
  t.throws(() => knnBlockCodec.decode(bad({ offsets: Int32Array.from(msg.offsets, (x) => x + 1) })), /must run from 0/);
  const wide = Int32Array.from(msg.offsets);
  wide[1] = 11;
  t.throws(() => knnBlockCodec.decode(bad({ offsets: wide })), /neighbours \(must be 0…kMax 10\)/);
  t.throws(() => knnBlockCodec.decode(bad({ sims: new Float32Array(1) })), /differ in length/);
  t.throws(() => knnBlockCodec.decode(bad({ neighbors: msg.neighbors.map(() => 999) })), /outside 0…79/);
  t.throws(() => knnBlockCodec.decode(bad({ sims: Array.from(msg.sims) })), DecodeError);
  t.throws(() => knnBlockAckCodec.decode(encodeMsg({ index: 1 })), /duplicate/);
});

t.test('the plan: cost-balanced, identical everywhere, split round robin', async (t) => {
  const plan = knnPlan(data, 'item', 8);
  t.same(knnPlan(prepareKnn(train, dims), 'item', 8), plan, 'deterministic');
  t.same(
    blocksOfRank(plan, 1, 3).map((b) => b.index),
    [1, 4, 7],
  );
  t.throws(() => blocksOfRank(plan, 3, 3), /rank 3 is not in 0…2/);
  t.throws(() => blocksOfRank(plan, 0, 0), /world size must be/);
});

t.test('over NATS: 2 workers + collector equal the single-process fit', async (t) => {
  // A small max_payload so blocks travel chunked, as large ones do at scale.
  const server = await NatsServer.start({ maxPayload: 16 * 1024 });
  const ncs = await Promise.all([0, 1, 2].map(() => connect({ servers: [server.url] })));
  t.teardown(async () => {
    await Promise.all(ncs.map((nc) => nc.close()));
    await server.stop();
  });
  const [agg, w0, w1] = ncs;

  for (const options of [
    { kind: 'item', similarity: 'pearson', shrinkage: 100, kMax: 50, k: 20 },
    { kind: 'user', similarity: 'adjusted-cosine', shrinkage: 10, kMax: 30, k: 10, keepNegative: true },
  ] satisfies KnnOptions[]) {
    await t.test(`${options.kind}-based ${options.similarity}`, async (t) => {
      const job = `dist-${options.kind}`;
      const plan = knnPlan(data, options.kind, 6);
      const lines: string[] = [];
      const collector = collectKnnBlocks(agg, job, plan, { kMax: options.kMax, log: (l) => lines.push(l) });
      await agg.flush();
      const early = await caught(fetchNeighbours(w0, job));
      t.ok(early instanceof RemoteError && early.code === KNN_NOT_READY && /0 of 6 similarity blocks/.test(early.message), 'not ready before the blocks');
      const waiting = fetchNeighbours(w1, job, { waitMs: 30_000, pollMs: 20 });
      const progress: number[] = [];
      const results = await Promise.all([w0, w1].map((nc, rank) => runKnnWorker({ nc, job, rank, worldSize: 2, data, options, blocks: 6, onBlock: (p) => progress.push(p.block.index) })));
      t.same(
        results.map((r) => r.blocks),
        [3, 3],
      );
      t.equal(results[0].rows + results[1].rows, options.kind === 'item' ? data.numItems : data.numUsers);
      t.same(
        [...progress].sort((a, b) => a - b),
        [0, 1, 2, 3, 4, 5],
      );
      const merged = await collector.done;
      const single = KnnModel.fit(train, options, dims).neighbours;
      t.same(merged, single, 'merged lists = KnnModel.fit, bit for bit');
      t.same(await waiting, single, 'a waiting fetch gets them once merged');
      t.same(await fetchNeighbours(w0, job), single);
      t.equal(collector.received(), 6);
      t.match(lines.at(-1), /all 6 similarity blocks in/);

      // A rank rerun (after a crash, say) sends blocks the collector already has: ignored.
      const again = computeBlock(data, options, plan[2]);
      const ack = await sendKnnBlock(w0, { ...again, job, rank: 0, index: 2, blocks: 6, numRows: merged.numRows, computeMs: 0 });
      t.same(ack, { index: 2, duplicate: true, received: 6, total: 6 });
      t.match(lines.at(-1), /again: already held, ignored/);
      collector.stop();
    });
  }

  await t.test('foreign blocks are refused and not stored', async (t) => {
    const job = 'foreign';
    const options = { kind: 'item', similarity: 'cosine', kMax: 20 } as const;
    const plan = knnPlan(data, 'item', 4);
    const collector = collectKnnBlocks(agg, job, plan, { kMax: 20 });
    await agg.flush();
    const block = (index: number, over: Partial<KnnBlockMessage> = {}): KnnBlockMessage => ({
      ...computeBlock(data, options, plan[index]),
      job,
      rank: 0,
      index,
      blocks: plan.length,
      numRows: data.numItems,
      computeMs: 0,
      ...over,
    });
    const refused = (re: RegExp) => (err: unknown) =>
      err instanceof KnnError && /the aggregator refused block/.test(err.message) && re.test(err.message) && /disagree on the data or the hyper-parameters/.test(err.message);
    t.ok(refused(/block 2 \[\d+, \d+\) of 4 over 80 rows from rank 0 is not in this plan \(4 blocks over 80 rows, block 2 is/)(await caught(sendKnnBlock(w0, block(1, { index: 2 })))));
    t.ok(refused(/not in this plan/)(await caught(sendKnnBlock(w0, block(1, { blocks: 5 })))));
    t.ok(refused(/computed with kMax 5, not 20/)(await caught(sendKnnBlock(w0, { ...block(0), ...computeBlock(data, { ...options, kMax: 5 }, plan[0]) }))));
    const elsewhere = await caught(sendKnnBlock(w0, block(0, { job: 'other' })));
    t.ok(elsewhere instanceof Error && /no service is listening on other\.knn\.block/.test(elsewhere.message), 'another job: its own subject, where nobody collects');
    const wrongJob = await caught(requestLarge(w0, knnSubjects.block(job), knnBlockCodec.encode(block(0, { job: 'other' }))));
    t.ok(wrongJob instanceof RemoteError && wrongJob.code === KNN_FOREIGN_BLOCK && /belongs to job other/.test(wrongJob.message), 'a block of another job sent to ours');
    t.equal(collector.received(), 0, 'nothing stored');
    const ok = await sendKnnBlock(w0, block(0));
    t.same(ok, { index: 0, duplicate: false, received: 1, total: 4 });
    collector.stop();
  });

  await t.test('a plan that does not tile its rows is refused at once', async (t) => {
    t.throws(
      () =>
        collectKnnBlocks(agg, 'gaps', [
          { index: 0, from: 0, to: 2 },
          { index: 1, from: 3, to: 5 },
        ]),
      /block 1 of the plan is .*must tile its rows/,
    );
  });

  await t.test('more ranks than blocks: the extra rank has nothing to do', async (t) => {
    const lines: string[] = [];
    const res = await runKnnWorker({ nc: w0, job: 'idle', rank: 3, worldSize: 4, data, options: { kind: 'item', similarity: 'cosine' }, blocks: 2, log: (l) => lines.push(l) });
    t.same(res.blocks, 0);
    t.match(lines[0], /rank 3\/4: 0 of 2 item-cosine similarity blocks \(none\)/);
  });

  await t.test('an empty plan is complete at once', async (t) => {
    const collector = collectKnnBlocks(agg, 'empty', []);
    t.same((await collector.done).numRows, 0);
    collector.stop();
  });
});
