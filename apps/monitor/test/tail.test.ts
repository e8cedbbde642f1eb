// `monitor --tail`: raw train.loss / train.eval JSON lines, as a real process over a real nats-server,
// and the line format of odd messages.
import t from 'tap';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { NatsServer, connect, listActorServices } from '@actorflow/bus';
import { tailLine, tailReports } from '../src/tail.ts';
import { demoReports, publishReports } from './helpers.ts';
import { tsxCommand } from '@actorflow/test-child';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.ts');
const enc = (s: string) => new TextEncoder().encode(s);

t.test('tailLine: subject and job first, the report as sent; other jobs skipped', async (t) => {
  const h = natsHeaders();
  h.set('Job-Id', 'j1');
  t.same(JSON.parse(tailLine('train.loss', { headers: h, data: enc('{"job":"j1","rank":0,"loss":0.5}') }) ?? ''), { subject: 'train.loss', job: 'j1', rank: 0, loss: 0.5 });
  t.equal(tailLine('train.loss', { headers: h, data: enc('{"job":"j1"}') }, 'j2'), undefined, 'header of another job');
  t.equal(tailLine('train.loss', { headers: undefined, data: enc('{"job":"j1"}') }, 'j2'), undefined, 'body of another job');
  t.same(JSON.parse(tailLine('train.eval', { headers: undefined, data: enc('not json') }) ?? ''), { subject: 'train.eval', raw: 'not json' }, 'not JSON: shown raw');
  t.same(JSON.parse(tailLine('train.eval', { headers: h, data: enc('[1]') }, 'j1') ?? ''), { subject: 'train.eval', job: 'j1', raw: '[1]' });
  t.equal(tailLine('train.eval', { headers: undefined, data: enc('[1]') }, 'j1'), undefined, 'no job to match: skipped when a job is chosen');
});

t.test('tailReports writes a line per message of the job, in order, until stopped', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const lines: string[] = [];
  const tail = tailReports(nc, (l) => lines.push(l), 'inproc');
  await nc.flush();
  const mine = demoReports('inproc', { ranks: 1, steps: 4, evalEvery: 2 });
  await publishReports(nc, demoReports('other', { ranks: 1, steps: 2 }));
  await publishReports(nc, mine);
  const deadline = Date.now() + 30_000;
  while (lines.length < mine.loss.length + mine.evals.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.same(
    lines.map((l) => (JSON.parse(l) as { subject: string; step: number }).subject),
    ['train.loss', 'train.loss', 'train.eval', 'train.loss', 'train.loss', 'train.eval'],
  );
  tail.stop();
  await publishReports(nc, mine);
  await nc.flush();
  t.equal(lines.length, 6, 'nothing after stop');
});

t.test('monitor --tail --job prints one JSON line per message of that job, then exits on SIGTERM', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const cmd = tsxCommand(main, ['--tail', '--job', 'tailjob', '--server', server.url]);
  const child = spawn(cmd.command, cmd.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NATS_URL: '' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => child.kill('SIGTERM'));
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(() => /tailing train\.loss \/ train\.eval of job tailjob/.test(err), 'the tail to start');
  const nc = await connect({ servers: [server.url] });
  t.teardown(() => nc.close());
  const mine = demoReports('tailjob', { ranks: 2, steps: 10, evalEvery: 5 });
  await publishReports(nc, demoReports('otherjob', { ranks: 1, steps: 3 }));
  await publishReports(nc, mine);
  const expected = mine.loss.length + mine.evals.length;
  await until(() => out.split('\n').filter((l) => l !== '').length >= expected, `${expected} lines`);
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { subject: string; job: string; rank?: number; step: number; loss?: number; metrics?: object });
  t.equal(lines.length, expected, 'one line per message, none of the other job');
  t.ok(lines.every((l) => l.job === 'tailjob'));
  t.same(
    lines.filter((l) => l.subject === 'train.loss').map((l) => [l.rank, l.step, l.loss]),
    mine.loss.map((l) => [l.rank, l.step, l.loss]),
    'the loss reports as published',
  );
  t.same(
    lines.filter((l) => l.subject === 'train.eval').map((l) => l.metrics),
    mine.evals.map((e) => e.metrics),
  );
  const services = await listActorServices(nc, { job: 'tailjob' });
  t.same(
    services.map((s) => s.metadata?.role),
    ['monitor'],
    'the monitor answers $SRV.INFO as an actorflow service of its job',
  );
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'clean exit on SIGTERM');
});
