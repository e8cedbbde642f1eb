// The user contract, by hand: actors started one per command, and mirrored ranks started either
// one per command (--rank 0) or several in one process (--ranks 1,2) — and they interoperate.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { NatsServer } from '@actorflow/bus';

const root = resolve(import.meta.dirname, '..');

function start(app: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'apps', app, 'main.ts'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  return { child, exited: new Promise((r) => child.on('exit', (code) => r(code))), output: () => out };
}

t.test('mirrored (ring all-reduce): --rank 0 in one process and --ranks 1,2 in another train together', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const env = { ...process.env, NATS_URL: server.url };
  const job = ['--job', 'hand'];
  const shard = start('data-shard', [...job, '--dataset', 'synthetic:tiny', '--epochs', '2', '--batch-size', '32'], env);
  const agg = start('aggregator', [...job, '--strategy', 'mirrored', '--world-size', '3', '--dim', '4'], env);
  t.teardown(() => {
    shard.child.kill('SIGTERM');
    agg.child.kill('SIGTERM');
  });
  const r0 = start('trainer', [...job, '--strategy', 'mirrored', '--rank', '0', '--allreduce', 'ring', '--backend', 'cpu'], env);
  const r12 = start('trainer', [...job, '--strategy', 'mirrored', '--ranks', '1,2', '--allreduce', 'ring', '--backend', 'cpu'], env);
  const [c0, c12] = await Promise.all([r0.exited, r12.exited]);
  t.equal(c0, 0, r0.output().slice(-1500));
  t.equal(c12, 0, r12.output().slice(-1500));
  const steps = (s: string, r: number): string | undefined => new RegExp(`\\[trainer ${r}\\] done: (\\d+) steps`).exec(s)?.[1];
  t.ok(steps(r0.output(), 0) !== undefined && steps(r0.output(), 0) === steps(r12.output(), 1) && steps(r12.output(), 1) === steps(r12.output(), 2), 'all three ranks ran the same steps');
  t.match(agg.output(), /mirrored replica of step \d+ stored/);
  const bad = start('trainer', [...job, '--strategy', 'mirrored', '--ranks', '1,5', '--world-size', '3'], env);
  t.equal(await bad.exited, 2);
  t.match(bad.output(), /rank 5 is not below --world-size 3/);
});
