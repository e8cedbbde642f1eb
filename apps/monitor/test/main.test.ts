// The thin main.ts as a real process: flags, the printed URL, plain lines when stdout is not a
// terminal, /state over HTTP, and a clean exit on SIGTERM.
import t from 'tap';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NatsServer, connect } from '@actorflow/bus';
import type { StateSnapshot } from '../src/state.ts';
import { demoReports, publishReports } from './helpers.ts';
import { tsxCommand } from '@actorflow/test-child';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');

function run(args: string[]): { out: () => string; err: () => string; exited: Promise<number | null>; kill: () => void } {
  // Without tap's coverage hooks (tap re-injects them into spawned processes, so `env -u` drops
  // them just before node starts): V8 coverage of the tsx-compiled sources would garble the report.
  const cmd = tsxCommand(main, args);
  const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NATS_URL: '' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { out: () => out, err: () => err, exited, kill: () => child.kill('SIGTERM') };
}

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('help and bad flags', async (t) => {
  const help = run(['--help']);
  t.equal(await help.exited, 0);
  t.match(help.out(), /Usage: npx nx run monitor/);
  const bad = run(['--job', 'a.b']);
  t.equal(await bad.exited, 2);
  t.match(bad.err(), /monitor: --job: job id 'a\.b' is not usable/);
});

t.test('watches a job, prints the URL and a line per second, serves /state, exits on SIGTERM', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const m = run(['--nats-url', server.url, '--port', '0', '--job', 'mainjob']);
  t.teardown(() => m.kill());
  await until(() => /web page http:\/\/127\.0\.0\.1:\d+\//.test(m.out()), 'the URL');
  const url = /web page (http:\/\/\S+)/.exec(m.out())?.[1] ?? '';
  t.match(m.out(), /waiting for train\.loss \/ train\.eval of job mainjob/);
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  await publishReports(nc, demoReports('mainjob', { ranks: 2, steps: 20, evalEvery: 10 }));
  await publishReports(nc, demoReports('otherjob', { ranks: 1, steps: 5 }));
  await until(() => /\[mainjob\] mirrored\/wasm step 20 \| loss r0 /.test(m.out()), 'a plain line');
  t.notMatch(m.out(), /otherjob/);
  const snap = (await (await fetch(`${url}state`)).json()) as StateSnapshot;
  t.equal(snap.filter, 'mainjob');
  t.equal(snap.seq, 42);
  m.kill();
  t.equal(await m.exited, 0, 'clean exit on SIGTERM');
});

t.test('no server: a clear error and exit 1', async (t) => {
  const m = run(['--nats-url', 'nats://127.0.0.1:1', '--nats-no-reconnect', '--no-web']);
  t.equal(await m.exited, 1);
  t.match(m.err(), /\[monitor\] fatal: .*Start a NATS server/);
});
