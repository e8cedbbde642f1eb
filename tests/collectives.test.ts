// Collectives across real processes: rank 0 alone, ranks 1 and 2 sharing a second process.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NatsServer } from '@actorflow/bus';

t.test('ranks in separate processes (one alone, two sharing a process) agree', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const fixture = fileURLToPath(new URL('./fixtures/rank.ts', import.meta.url));
  const run = (ranks: string): Promise<string> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', fixture, server.url, 'procs', '3', ranks], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.on('exit', () => resolve(out.trim()));
    });
  const [a, bc] = await Promise.all([run('0'), run('1,2')]);
  const lines = [...a.split(' '), ...bc.split(' ')];
  t.equal(lines.length, 3, lines.join(' | '));
  const sums = lines.map((l) => l.split(':').slice(1).join(':'));
  t.ok(
    sums.every((s) => s === sums[0]),
    `every rank got the same star and ring sums (${sums[0]})`,
  );
});
