import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer, connect } from '@actorflow/bus';
import { DataClient, dataOptionFlags, loadJobDataset, parseDataOptions, serveDataShard } from '../mod.ts';
import type { Ratings } from '@actorflow/data';

const keys = (r: Ratings): string[] => Array.from({ length: r.length }, (_, i) => `${r.user[i]}:${r.item[i]}`);

t.test('--validation F: carved from training, disjoint from train and test, served as its own kind, never as a training batch', async (t) => {
  const ds = await loadJobDataset({ source: 'synthetic:tiny', split: 'kfold:4/1', seed: 9, validation: '0.1' });
  const plain = await loadJobDataset({ source: 'synthetic:tiny', split: 'kfold:4/1', seed: 9 });
  const v = ds.validation;
  if (v === undefined) throw new Error('no validation set');
  t.equal(v.length, Math.round(plain.train.length * 0.1));
  t.equal(ds.train.length + v.length, plain.train.length, 'the validation rows come out of training');
  t.same(keys(ds.test), keys(plain.test), 'the test split is unchanged');
  const train = new Set(keys(ds.train));
  const test = new Set(keys(ds.test));
  t.ok(
    keys(v).every((k) => !train.has(k) && !test.has(k)),
    'no validation rating is trained on or tested',
  );

  const server = await NatsServer.start({ maxPayload: 256 * 1024 });
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const svcs = [0, 1].map((shard) => serveDataShard(nc, { job: 'val', shard, of: 2, dataset: ds, batchSize: 64, epochs: 1, seed: 9 }));
  await nc.flush();
  const client = new DataClient(nc, { job: 'val', shards: 2 });
  t.same(keys(await client.validationSet()), keys(v), 'served on the test subject as kind validation');
  t.equal((await client.info()).validationRows, v.length);
  const served: string[] = [];
  for await (const { batch } of client.shared()) for (let i = 0; i < batch.user.length; i++) served.push(`${batch.user[i]}:${batch.item[i]}`);
  t.equal(served.length, ds.train.length, 'one epoch is the training rows without the validation rows');
  const val = new Set(keys(v));
  t.notOk(
    served.some((k) => val.has(k)),
    'no validation rating in a training batch',
  );
  for (const s of svcs) s.stop();
  const none = serveDataShard(nc, { job: 'noval', shard: 0, of: 1, dataset: plain, batchSize: 64, epochs: 1, seed: 9 });
  await nc.flush();
  await t.rejects(new DataClient(nc, { job: 'noval', shards: 1, retry: { deadlineMs: 2000 } }).validationSet(), /no validation set; start it with --validation/);
  none.stop();
});

t.test('--validation file:PATH: ids shared with training, its ratings removed from training; option parsing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feed-validation-'));
  writeFileSync(join(dir, 'u.base'), '1\t10\t5\t100\n2\t20\t3\t101\n1\t20\t4\t102\n2\t30\t2\t103\n3\t10\t4\t104\n');
  writeFileSync(join(dir, 'u.test'), '2\t10\t1\t104\n');
  writeFileSync(join(dir, 'u.val'), '1\t20\t4\t102\n4\t10\t3\t1\n');
  const ds = await loadJobDataset({ source: join(dir, 'u.base'), split: `file:${join(dir, 'u.test')}`, seed: 1, validation: `file:${join(dir, 'u.val')}` });
  t.equal(ds.validation?.length, 2);
  t.equal(ds.train.length, 4, 'the validation rating that was in training is not trained on');
  t.notOk(keys(ds.train).includes(`${ds.users?.get(1)}:${ds.items?.get(20)}`));
  t.equal(ds.numUsers, 4, 'a validation-only user gets a row');
  t.equal(ds.validation?.user[0], ds.users?.get(1), 'ids shared with training');

  t.same(parseDataOptions({ validation: '0.05' }), { validation: '0.05' });
  t.same(parseDataOptions({ validation: 'file:u.val' }, { INIT_CWD: dir }), { validation: `file:${join(dir, 'u.val')}` }, 'resolved against INIT_CWD');
  t.same(dataOptionFlags({ validation: '0.05' }), ['--validation', '0.05']);
  for (const bad of ['0', '1', 'x', '', '-0.1']) t.throws(() => parseDataOptions({ validation: bad }), /--validation takes a fraction/, bad);
  t.throws(() => parseDataOptions({ validation: 'file:nope.csv' }, { INIT_CWD: dir }), { message: `--validation file:nope.csv: no such file ${join(dir, 'nope.csv')}` });
  t.throws(() => parseDataOptions({ validation: 'file:' }), /needs a path/);
  await t.rejects(loadJobDataset({ source: 'synthetic:tiny', seed: 1, validation: `file:${join(dir, 'u.val')}` }), /a validation file needs --dataset to be a ratings file/);
});
