// The apps' kNN branches, end to end in one process over a real nats-server: the aggregator's
// part (config + collector), trainers for two ranks, the evaluator, and saving the model — fed by
// a stand-in for the data shards with the same shape as feed's DataClient.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlagError, NatsServer, connect, requestLarge, serveLarge, type NatsConnection } from '@actorflow/bus';
import { groupRows, randomSplit, syntheticRatings } from '@actorflow/data';
import { evalReportCodec, lossReportCodec, subjects, type EvalReport, type LossReport } from '@actorflow/protocol';
import {
  KNN_DEFAULTS,
  KNN_MODEL,
  KnnError,
  KnnModel,
  knnAggregatorFlags,
  knnMetrics,
  knnSettings,
  loadKnnData,
  parseKnnHyper,
  plannedBlocks,
  ratingsFromRows,
  readNeighbours,
  runKnnTrainer,
  saveKnnModel,
  serveKnnAggregator,
  serveKnnEvaluator,
  type KnnDataSource,
  type KnnJobConfig,
} from '../mod.ts';

const caught = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

const s = syntheticRatings('tiny', 5);
const { train, test } = randomSplit(s.ratings, { fraction: 0.1, seed: 2 });
let sum = 0;
for (let i = 0; i < train.length; i++) sum += train.rating[i];
const globalMean = sum / train.length;
const source = (kind = 'ratings'): KnnDataSource => ({
  waitForInfo: async (_ms, onWait) => {
    onWait?.(20);
    return { kind, numUsers: s.numUsers, numItems: s.numItems, globalMean };
  },
  trainHistory: async () => groupRows(train, 'user'),
  testSet: async () => test,
});

t.test('hyper-parameters and flags', async (t) => {
  t.same(parseKnnHyper(['kind=user', 'k=20', 'keepNegative=true', 'clip=1,5']), { kind: 'user', k: 20, keepNegative: true, clip: '1,5' });
  t.throws(() => parseKnnHyper(['dim=3']), /kNN has no such hyper-parameter; it takes kind, similarity/);
  t.throws(() => parseKnnHyper(['k']), /KEY=VALUE/);
  t.throws(() => parseKnnHyper(['k=many']), /k must be a number/);
  t.throws(() => parseKnnHyper(['keepNegative=yes']), /true or false/);
  const d = knnSettings({});
  t.same(d.options, { kind: 'item', similarity: 'pearson', shrinkage: 100, minSupport: 1, kMax: 200, keepNegative: false, normalize: 'mean', k: 40 });
  t.equal(d.blocks, 8);
  t.same(knnSettings({ clip: '0.5,5' }).options.clip, [0.5, 5]);
  t.throws(() => knnSettings({ clip: '5' }), /clip must be 'min,max'/);
  t.throws(() => knnSettings({ clip: '5,1' }), /min <= max/);
  t.throws(() => knnSettings({ normalize: 'max' }), /normalize must be none, mean or zscore/);
  t.throws(() => knnSettings({ k: 300 }), /k must be an integer in 1…kMax \(200\)/);
  t.throws(() => knnSettings({ blocks: 0 }), /blocks must be an integer >= 1/);
  t.throws(() => knnSettings({ kMax: 'x' }), /kMax must be a number/);
  t.throws(() => knnSettings({ similarity: 'jaccard' }), KnnError);
  t.equal(plannedBlocks({ blocks: 8, numItems: 5 }), 5, 'never more blocks than rows');
  t.equal(plannedBlocks({ kind: 'user', blocks: 8, numUsers: 100 }), 8);

  t.same(knnAggregatorFlags({ hyper: ['k=10'], 'world-size': '3' }), { job: 'local', strategy: 'ps', worldSize: 3, seed: 42, hyper: { k: 10 } });
  t.throws(() => knnAggregatorFlags({ 'ps-shards': '2' }), FlagError);
  t.throws(() => knnAggregatorFlags({ strategy: 'hogwild' }), /--strategy must be ps or mirrored/);
  t.throws(() => knnAggregatorFlags({ hyper: ['k=0'] }), FlagError);
  t.throws(() => knnAggregatorFlags({ seed: '-1' }), FlagError);
});

t.test('user rows back to ratings', async (t) => {
  const plain = await loadKnnData(source(), {});
  t.equal(plain.numItems, Math.max(...train.item) + 1, 'no data hyper-parameters: sizes from the ids');
  const m = KnnModel.fit(train, { kind: 'item', similarity: 'cosine', k: 5 });
  t.ok(Number.isNaN(knnMetrics(m, { user: new Int32Array(0), item: new Int32Array(0), rating: new Float32Array(0), length: 0 })['globalMean.rmse']), 'empty test set');
  const r = ratingsFromRows(groupRows(train, 'user'));
  t.equal(r.length, train.length);
  t.same(
    KnnModel.fit(r, { kind: 'item', similarity: 'cosine' }, { numUsers: s.numUsers, numItems: s.numItems }).neighbours,
    KnnModel.fit(train, { kind: 'item', similarity: 'cosine' }, { numUsers: s.numUsers, numItems: s.numItems }).neighbours,
  );
  t.throws(() => ratingsFromRows({ user: Int32Array.of(0), offsets: Int32Array.of(0, 3), items: Int32Array.of(1), values: Float32Array.of(1) }), /user rows are malformed/);
});

t.test('a job: aggregator, two trainer ranks, evaluator, saved model', async (t) => {
  const server = await NatsServer.start({ maxPayload: 32 * 1024 });
  const ncs: NatsConnection[] = await Promise.all([0, 1, 2, 3].map(() => connect({ servers: [server.url] })));
  const dir = mkdtempSync(join(tmpdir(), 'knn-job-'));
  t.teardown(async () => {
    await Promise.all(ncs.map((nc) => nc.close()));
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const [agg, trainer, evaluator, watcher] = ncs;
  const job = 'knnjob';
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
  };
  const flags = knnAggregatorFlags({ job, strategy: 'mirrored', 'world-size': '2', hyper: ['kind=user', 'similarity=pearson', 'k=20', 'kMax=60', 'blocks=5'] });
  let served: KnnJobConfig | undefined;
  const aggregator = await serveKnnAggregator(agg, flags, {
    data: source(),
    serveConfig: (c) => {
      served = c;
      return serveLarge(agg, subjects.ctl(job, 'config'), () => new TextEncoder().encode(JSON.stringify(c)));
    },
    log,
  });
  t.equal(served?.model, KNN_MODEL);
  t.same(served?.hyper, { ...KNN_DEFAULTS, kind: 'user', similarity: 'pearson', k: 20, kMax: 60, blocks: 5, numUsers: s.numUsers, numItems: s.numItems, globalMean });
  t.match(lines.join('\n'), /still waiting for a data shard[\s\S]*5 cost-balanced blocks planned/);
  const config = JSON.parse(new TextDecoder().decode(await requestLarge(trainer, subjects.ctl(job, 'config'), new Uint8Array(0)))) as KnnJobConfig;

  const reports: LossReport[] = [];
  const evals: EvalReport[] = [];
  watcher.subscribe(subjects.loss, { callback: (_e, m) => void reports.push(lossReportCodec.decode(m.data)) });
  watcher.subscribe(subjects.eval, { callback: (_e, m) => void evals.push(evalReportCodec.decode(m.data)) });
  await watcher.flush();
  const history: EvalReport[] = [];
  const ev = serveKnnEvaluator(evaluator, { config, data: source(), log, onReport: (r) => history.push(r) });
  await evaluator.flush();

  t.ok((await caught(runKnnTrainer(trainer, { config, data: source(), ranks: [2], worldSize: 2, strategy: 'mirrored' }))) instanceof KnnError, 'rank outside the world');
  await runKnnTrainer(trainer, { config, data: source(), ranks: [0, 1], worldSize: 2, strategy: 'mirrored', log });
  const merged = await aggregator.collector.done;
  const reference = KnnModel.fit(train, knnSettings(config.hyper).options, { numUsers: s.numUsers, numItems: s.numItems });
  t.same(merged, reference.neighbours, 'distributed = single process');

  // Progress on train.loss: one report per block (step = this rank's blocks done), then done.
  await watcher.flush();
  const mine = reports.filter((r) => r.job === job);
  t.same(
    mine.filter((r) => r.done !== true).map((r) => [r.rank, r.step]),
    [
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 1],
      [1, 2],
    ],
  );
  t.same(
    mine.filter((r) => r.done === true).map((r) => [r.rank, r.step]),
    [
      [0, 3],
      [1, 2],
    ],
  );
  t.ok(mine.every((r) => r.loss === 0 && r.strategy === 'mirrored'));

  // The final evaluation, as the launcher asks for it.
  const final = evalReportCodec.decode(await requestLarge(trainer, subjects.evalNow(job), new TextEncoder().encode(JSON.stringify({ final: true }))));
  const want = knnMetrics(reference, test);
  t.equal(final.final, true);
  t.equal(final.step, 5, 'step = blocks');
  t.same(final.metrics, want, 'metrics = single-process model on the same split');
  t.same(Object.keys(want).sort(), ['globalMean.rmse', 'mae', 'mae@10', 'mae@20', 'mae@40', 'rmse', 'rmse@10', 'rmse@20', 'rmse@40'].sort(), 'sweep limited to kMax 60');
  t.equal(want.rmse, want['rmse@20']);
  t.ok(want.rmse < want['globalMean.rmse'], `user-kNN ${want.rmse.toFixed(4)} beats the global mean ${want['globalMean.rmse'].toFixed(4)}`);
  await watcher.flush();
  t.ok(evals.length >= 2 && history.length >= 2, 'an unasked evaluation when the trainers were done, and the final one; both published and kept');
  t.ok(history.every((r) => r.job === job && r.metrics.rmse === want.rmse));
  const again = await ev.evaluate(false);
  t.same(again.metrics, want, 'the model is built once; later evaluations agree');

  const paths = await saveKnnModel(trainer, job, join(dir, 'model'), { ...config, dataset: { source: 'synthetic:tiny' } });
  t.same(readNeighbours(paths.neighbours), reference.neighbours, 'neighbours.bin round trip');
  t.match(paths.config, /config\.json$/);

  ev.stop();
  aggregator.stop();
});

t.test('evaluation before the lists are complete, and image data', async (t) => {
  const server = await NatsServer.start();
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const job = 'early';
  const flags = knnAggregatorFlags({ job, hyper: ['blocks=2'] });
  const lines: string[] = [];
  const aggregator = await serveKnnAggregator(nc, flags, { data: source(), serveConfig: () => nc.subscribe('unused'), log: (l) => lines.push(l) });
  const ev = serveKnnEvaluator(nc, { config: aggregator.config, data: source(), log: (l) => lines.push(l) });
  // A trainer says done (another rank still computing): the evaluator tries, finds the lists incomplete, stays quiet.
  nc.publish(subjects.loss, lossReportCodec.encode({ job, rank: 0, step: 1, epoch: 0, loss: 0, examples: 0, examplesPerSec: 0, strategy: 'ps', backend: 'js', ts: 0, done: true }));
  nc.publish(subjects.loss, new TextEncoder().encode('not a report'));
  await nc.flush();
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(lines.some((l) => /evaluation failed/.test(l)));
  const early = await caught(ev.evaluate(false, 0));
  t.match(early, { code: 'KNN_NOT_READY' });
  // Then the blocks arrive while a final evaluation waits.
  const waiting = ev.evaluate(true, 30_000);
  await runKnnTrainer(nc, { config: aggregator.config, data: source(), ranks: [0], worldSize: 1, strategy: 'ps' });
  t.ok((await waiting).metrics.rmse > 0);
  ev.stop();
  aggregator.stop();
  // Data that fails to load: the unasked evaluation says so in the log; a quiet evaluator (no log) too.
  const broken: KnnDataSource = { ...source(), testSet: async () => Promise.reject(new Error('shard gone')) };
  const failing: string[] = [];
  const evBroken = serveKnnEvaluator(nc, { config: { ...aggregator.config, job: 'broken' }, data: broken, log: (l) => failing.push(l) });
  const evQuiet = serveKnnEvaluator(nc, { config: { ...aggregator.config, job: 'broken' }, data: broken });
  nc.publish(subjects.loss, lossReportCodec.encode({ job: 'broken', rank: 0, step: 1, epoch: 0, loss: 0, examples: 0, examplesPerSec: 0, strategy: 'ps', backend: 'js', ts: 0, done: true }));
  await nc.flush();
  await new Promise((r) => setTimeout(r, 200));
  t.match(failing.join('\n'), /loading the data failed: shard gone[\s\S]*evaluation failed: shard gone/);
  evBroken.stop();
  evQuiet.stop();
  t.ok((await caught(serveKnnAggregator(nc, flags, { data: source('images'), serveConfig: () => nc.subscribe('unused') }))) instanceof KnnError, 'images are not ratings');
});
