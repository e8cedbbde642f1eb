// Real actors as NATS services (issue 15): a trainer that takes its rank from RANK / WORLD_SIZE /
// LOCAL_RANK (torchrun convention) and a data shard, as separate processes on a real nats-server,
// are listed by $SRV.INFO with their role, job and rank; a bad RANK is a usage error.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NatsServer, actorServiceStats, connect, listActorServices } from '@actorflow/bus';
import { tsxCommand } from '@actorflow/test-child';

const root = fileURLToPath(new URL('..', import.meta.url));

function start(app: string, args: string[], env: Record<string, string> = {}) {
  const cmd = tsxCommand(`apps/${app}/main.ts`, args);
  const child = spawn(cmd.command, cmd.args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NATS_URL: '', RANK: '', WORLD_SIZE: '', LOCAL_RANK: '', ...env },
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout.on('data', () => undefined);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { err: () => err, exited, kill: () => child.kill('SIGTERM') };
}

t.test('a trainer (rank from $RANK) and a data shard answer $SRV.INFO / STATS', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const trainer = start('trainer', ['--job', 'svcjob', '--strategy', 'mirrored', '--nats-url', server.url], { RANK: '2', WORLD_SIZE: '3', LOCAL_RANK: '0' });
  const shard = start('data-shard', ['--job', 'svcjob', '--dataset', 'synthetic:tiny', '--nats-url', server.url]);
  t.teardown(() => {
    trainer.kill();
    shard.kill();
  });
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const deadline = Date.now() + 60_000;
  let roles: string[] = [];
  while (Date.now() < deadline) {
    roles = (await listActorServices(nc, { job: 'svcjob', timeoutMs: 500 })).map((i) => `${i.metadata?.role}:${i.metadata?.rank}`).sort();
    if (roles.length >= 2) break;
  }
  t.same(roles, ['data-shard:0/1', 'trainer:2'], 'both actors listed, the trainer with the rank from $RANK');
  t.match(trainer.err(), /\[trainer 2 \(local 0\)\] waiting for the aggregator of job svcjob/, 'LOCAL_RANK shown in the log');
  const stats = await actorServiceStats(nc, { job: 'svcjob' });
  const trainerStats = stats.find((s) => s.metadata?.role === 'trainer')?.endpoints?.[0]?.data as Record<string, unknown> | undefined;
  t.match(trainerStats, { role: 'trainer', job: 'svcjob', rank: '2', steps: 0, examples: 0 }, 'live stats');
  trainer.kill();
  shard.kill();
  await Promise.all([trainer.exited, shard.exited]);
});

t.test('a bad $RANK is a usage error naming it', async (t) => {
  const trainer = start('trainer', ['--nats-url', 'nats://127.0.0.1:1', '--nats-no-reconnect'], { RANK: 'first' });
  t.equal(await trainer.exited, 2);
  t.match(trainer.err(), /trainer: --rank \(from \$RANK\) must be an integer >= 0, got 'first'/);
});
