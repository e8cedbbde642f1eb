// `nx serve node` as its own process on a real nats-server: it answers info (with its flags and a
// measured calibration), starts a tiny actor, lists it, stops it, and stops actors whose lease
// lapses; SIGTERM stops what it started.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';
import { connect, NatsServer } from '@actorflow/bus';
import { discoverNodes, listActors, nodeInfo, startActor, stopActors } from '@actorflow/cluster';
import { tsxCommand } from '@actorflow/test-child';

const root = resolve(import.meta.dirname, '../../..');
const tiny = 'libs/cluster/test/fixtures/tiny-actor.ts';

async function until<T>(what: string, f: () => Promise<T | undefined>, deadlineMs = 90_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('the node agent process', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const cmd = tsxCommand('apps/node/main.ts', ['--nats-url', server.url, '--name', 'alpha', '--label', 'zone=a', '--label', 'disk=ssd', '--energy-efficient', '--backend', 'cpu']);
  const agent = spawn(cmd.command, cmd.args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  agent.stdout.on('data', (d: Buffer) => (output += d.toString()));
  agent.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const agentExit = new Promise<number | null>((r) => agent.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
  });
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());

  const info = await until('the agent to answer', () => nodeInfo(nc, 'alpha', { deadlineMs: 1000 }));
  t.equal(info.name, 'alpha');
  t.same(info.labels, { zone: 'a', disk: 'ssd' });
  t.equal(info.energyEfficient, true);
  t.ok(info.cores >= 1 && info.memoryBytes > 0);
  t.ok(info.backends.includes('cpu'), `backends ${info.backends.join(',')}`);
  t.ok(info.calibration.sparseExamplesPerSec > 0 && info.calibration.matmulGflops > 0, 'calibrated at start');
  t.ok((info.calibration.linkMBps ?? 0) > 0, 'its link to the broker measured');
  t.ok(Array.isArray(info.gpus));
  t.match(output, /serving cluster\.node\.alpha\.\* on .*cores.*GFLOP\/s/);
  t.same(
    (await discoverNodes(nc)).map((n) => n.name),
    ['alpha'],
  );

  const started = await startActor(nc, 'alpha', { job: 'j', actor: 'tiny-0', entry: tiny, args: ['--x'], leaseMs: 120_000 });
  t.equal(started.running, true);
  const listed = await until('tiny-0 listed', async () => (await listActors(nc, 'alpha')).actors.find((a) => a.actor === 'tiny-0'));
  t.equal(listed.pid, started.pid);
  const stopped = await stopActors(nc, 'alpha', 'j');
  t.equal(stopped.actors[0].running, false);
  t.equal(stopped.actors[0].stoppedBy, 'stop request');

  // Nobody renews this one's lease: the agent stops it by itself.
  await startActor(nc, 'alpha', { job: 'gone', actor: 'orphan', entry: tiny, args: [], leaseMs: 500 });
  const orphan = await until('the lease to lapse', async () => (await listActors(nc, 'alpha')).actors.find((a) => a.actor === 'orphan' && !a.running));
  t.equal(orphan.stoppedBy, 'lease expired');

  // SIGTERM: the agent stops its actors and exits 0.
  await startActor(nc, 'alpha', { job: 'end', actor: 'last', entry: tiny, args: [], leaseMs: 120_000 });
  await until('last running', async () => ((await listActors(nc, 'alpha')).actors.find((a) => a.actor === 'last')?.running === true ? true : undefined));
  agent.kill('SIGTERM');
  t.equal(await agentExit, 0);
  t.match(output, /actor last of job end ended: .*stopped: agent shutting down/);
});
