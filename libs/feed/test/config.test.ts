import t from 'tap';
import { NatsServer, connect } from '@actorflow/bus';
import { fetchJobConfig, serveJobConfig, type JobConfig } from '../mod.ts';

t.test('the aggregator-owned job configuration round-trips; a missing aggregator is a clear error', async (t) => {
  const server = await NatsServer.start();
  const nc = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await nc.close();
    await server.stop();
  });
  const config: JobConfig = { job: 'cfg', strategy: 'ps', model: 'mf', hyper: { dim: 8 }, optimizer: { name: 'adam', lr: 0.01 }, psShards: 2, worldSize: 1, staleness: 'none', seed: 1 };
  const sub = serveJobConfig(nc, config);
  await nc.flush();
  t.same(await fetchJobConfig(nc, 'cfg', 5000), config);
  sub.unsubscribe();
  let waits = 0;
  await t.rejects(
    fetchJobConfig(nc, 'nobody', 600, () => waits++),
    /no aggregator answered for job 'nobody'.*npx nx serve aggregator -- --job nobody/,
  );
  t.ok(waits >= 1, 'reported waiting');
});
