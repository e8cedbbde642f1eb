import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tsxCommand } from '@actorflow/test-child';
import { selectBackend } from '@actorflow/engine';
import { lowRankRatings } from '@actorflow/data';
import { saveParams } from '@actorflow/embeddings';
import { loadJobDataset } from '@actorflow/feed';
import { createModel } from '@actorflow/models';
import { trainLocal } from '@actorflow/strategies';
import { KnnModel, knnSettings, neighboursCodec } from '@actorflow/knn';
import { Recommender } from '../src/recommender.ts';

// A ratings file with MovieLens-like ids that are not 0…n-1, so a mix-up of raw ids and indices shows.
const dir = mkdtempSync(join(tmpdir(), 'recommend-'));
const csv = join(dir, 'ratings.csv');
const data = lowRankRatings({ users: 120, items: 80, perUser: 30, rank: 3, noise: 0.3, seed: 5 });
writeFileSync(
  csv,
  `userId,movieId,rating,timestamp\n${Array.from({ length: data.ratings.length }, (_, i) => `${1000 + data.ratings.user[i]},${50 + 3 * data.ratings.item[i]},${data.ratings.rating[i].toFixed(1)},${i}`).join('\n')}\n`,
);
const spec = { source: csv, split: 'random:0.1', seed: 7 };
const modelDir = join(dir, 'model');

t.before(async () => {
  const ds = await loadJobDataset(spec);
  const config = {
    job: 't',
    strategy: 'ps',
    worldSize: 1,
    model: 'mf',
    hyper: { numUsers: ds.numUsers, numItems: ds.numItems, globalMean: ds.globalMean, dim: 8, initStd: 0.1 },
    optimizer: { name: 'adam', lr: 0.02 },
    psShards: 1,
    staleness: 'none',
    seed: 7,
    dataset: spec,
  };
  const engine = await selectBackend({ backend: 'cpu' });
  const { params } = trainLocal({ engine, model: createModel('mf', config.hyper), train: ds.train, batchSize: 256, epochs: 4, seed: 7, optimizer: { name: 'adam', lr: 0.02 } });
  mkdirSync(modelDir, { recursive: true });
  saveParams(join(modelDir, 'params.bin'), { tables: Object.values(params.tables), dense: params.dense });
  writeFileSync(join(modelDir, 'config.json'), JSON.stringify(config));
});

t.test('top-N on raw ids, training items excluded, best first', async (t) => {
  const rec = await Recommender.open(modelDir);
  const engine = await selectBackend({ backend: 'cpu' });
  const top = rec.recommend(engine, '1003', 10);
  t.equal(top.length, 10);
  const seen = new Set(rec.seen('1003'));
  t.ok(seen.size > 10, `user 1003 rated ${seen.size} items in training`);
  t.ok(
    top.every((r) => !seen.has(r.index)),
    'nothing the user rated is recommended',
  );
  t.ok(
    top.every((r) => typeof r.id === 'number' && (r.id - 50) % 3 === 0),
    `answers are the file's ids: ${top.map((r) => r.id).join(' ')}`,
  );
  for (let k = 1; k < top.length; k++) t.ok(top[k - 1].score >= top[k].score, 'sorted by score');
  t.throws(() => rec.recommend(engine, '999999', 5), /user '999999' is not in the dataset/);
  const sim = rec.similar('53', 5);
  t.equal(sim.length, 5);
  t.ok(
    sim.every((r) => r.id !== 53 && r.score <= 1.0001),
    'an item is not its own neighbour; cosine ≤ 1',
  );
  t.throws(() => rec.similar('52', 5), /item '52' is not in the dataset/);
});

t.test('the command line', async (t) => {
  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  const run = (...args: string[]) => (({ command, args: argv }) => spawnSync(command, argv, { encoding: 'utf8', timeout: 120_000 }))(tsxCommand(main, args));
  const ok = run('--model-dir', modelDir, '--user', '1003', '--n', '3', '--json', '--backend', 'cpu');
  t.equal(ok.status, 0, ok.stderr);
  t.equal((JSON.parse(ok.stdout) as unknown[]).length, 3);
  const bad = run('--model-dir', join(dir, 'nope'), '--user', '1');
  t.equal(bad.status, 2);
  t.match(bad.stderr, /config.json not found: pass --model-dir the model directory of a finished job/);
  const both = run('--model-dir', modelDir);
  t.match(both.stderr, /exactly one of --user ID or --similar-to ITEM/);
});

t.test('kNN models: top-N from neighbour sums, similar items from the neighbour lists', async (t) => {
  const ds = await loadJobDataset(spec);
  const hyper = { numUsers: ds.numUsers, numItems: ds.numItems, kind: 'item', k: 20 };
  const knn = KnnModel.fit(ds.train, knnSettings(hyper).options, { numUsers: ds.numUsers, numItems: ds.numItems });
  const dirKnn = join(dir, 'knn-model');
  mkdirSync(dirKnn, { recursive: true });
  writeFileSync(join(dirKnn, 'neighbours.bin'), neighboursCodec.encode({ job: 't', ...knn.neighbours }));
  writeFileSync(join(dirKnn, 'config.json'), JSON.stringify({ job: 't', model: 'knn', hyper, dataset: spec }));
  const rec = await Recommender.open(dirKnn);
  t.equal(rec.name, 'knn');
  const engine = await selectBackend({ backend: 'cpu' });
  const top = rec.recommend(engine, '1003', 5);
  const seen = new Set(rec.seen('1003'));
  t.equal(top.length, 5);
  t.ok(
    top.every((r) => !seen.has(r.index)),
    'rated items excluded',
  );
  const sim = rec.similar('53', 3);
  t.ok(sim.length > 0 && sim.every((r) => r.id !== 53), `neighbours of item 53: ${sim.map((r) => `${r.id} (${r.score.toFixed(3)})`).join(', ')}`);
  for (let k = 1; k < sim.length; k++) t.ok(sim[k - 1].score >= sim[k].score, 'most similar first');
});
