// The watch commands the launcher prints work as printed (over a real nats-server), and freePort
// gives a port one can listen on.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsxCommand } from '@actorflow/test-child';
import { NatsServer, connect } from '@actorflow/bus';
import { lossReportCodec, monitoringHeaders, subjects } from '@actorflow/protocol';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { freePort, watchCommands } from '../src/watch.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

t.test('watchCommands names the server and the job, plain and --tail', async (t) => {
  t.same(watchCommands('nats://127.0.0.1:4321', 'job-1'), [
    'watch it: npx nx run monitor -- --server nats://127.0.0.1:4321 --job job-1',
    'raw JSON lines: npx nx run monitor -- --server nats://127.0.0.1:4321 --job job-1 --tail',
  ]);
});

t.test('freePort: a port that can be listened on', async (t) => {
  const port = await freePort();
  t.ok(port > 0 && port < 65536);
  const srv = createServer();
  await new Promise<void>((r, j) => {
    srv.once('error', j);
    srv.listen(port, '127.0.0.1', () => r());
  });
  await new Promise<void>((r) => srv.close(() => r()));
});

t.test('the printed --tail command, run as printed, shows the job’s reports', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const line = watchCommands(server.url, 'watched')[1] ?? '';
  const args = line.slice(line.indexOf(' -- ') + 4).split(' ');
  const cmd = tsxCommand(join(root, 'apps/monitor/main.ts'), args);
  const child = spawn(cmd.command, cmd.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NATS_URL: '' },
  });
  t.teardown(() => child.kill('SIGTERM'));
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(() => /tailing/.test(err), 'the monitor');
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const h = natsHeaders();
  for (const [k, v] of Object.entries(monitoringHeaders('watched'))) h.set(k, v);
  nc.publish(subjects.loss, lossReportCodec.encode({ job: 'watched', rank: 0, step: 3, epoch: 0, loss: 0.75, examples: 10, examplesPerSec: 100, strategy: 'ps', backend: 'cpu', ts: 1 }), {
    headers: h,
  });
  await nc.flush();
  await until(() => out.includes('\n'), 'a line');
  t.match(JSON.parse(out.split('\n')[0] ?? '') as object, { subject: 'train.loss', job: 'watched', step: 3, loss: 0.75 });
});
