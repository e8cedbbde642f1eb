// End to end with real processes (issue 15): a real nats-server, the monitor app itself
// (`main.ts`, as `npx nx run monitor` starts it), and one process per trainer rank publishing
// train.loss and beating as actors do (fixtures/trainer-like.ts). Headless Chromium must show the
// two concurrent jobs apart, and the job whose only process is killed (-9) as stopped once its
// heartbeats stop, while the other stays live.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { NatsServer } from '@actorflow/bus';
import { requireChromium } from './helpers.ts';
import { tsxCommand } from '@actorflow/test-child';

const here = dirname(fileURLToPath(import.meta.url));
const app = resolve(here, '..');

function start(args: string[]): ChildProcess {
  const cmd = tsxCommand(args[0] ?? '', args.slice(1));
  const child = spawn(cmd.command, cmd.args, { cwd: app, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  return child;
}

/** The first match of `re` in the child's stdout (fails with its stderr if it exits first). */
function waitForLine(child: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((ok, fail) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d: string) => (err += d));
    child.stdout?.on('data', (d: string) => {
      out += d;
      const m = re.exec(out);
      if (m !== null) ok(m);
    });
    child.on('exit', (code) => fail(new Error(`exited (${String(code)}) before printing ${re}:\n${out}\n${err}`)));
  });
}

t.test('two concurrent jobs of real publisher processes; a killed one turns stopped', async (t) => {
  const executablePath = requireChromium();
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const children: ChildProcess[] = [];
  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  const monitor = start(['main.ts', '--server', server.url, '--port', '0', '--no-tty', '--no-color']);
  children.push(monitor);
  const url = (await waitForLine(monitor, /monitor: web page (http:\/\/\S+)/))[1] ?? '';

  const publisher = (job: string, rank: number, strategy: string): ChildProcess => {
    const c = start([join(here, 'fixtures', 'trainer-like.ts'), server.url, job, String(rank), strategy]);
    children.push(c);
    return c;
  };
  const alpha = [publisher('alpha', 0, 'mirrored'), publisher('alpha', 1, 'mirrored')];
  const beta = publisher('beta', 0, 'ps');
  await Promise.all([...alpha, beta].map((c) => waitForLine(c, /publishing/)));

  const browser: Browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(url);
  await page.waitForSelector('#status[data-state=live]');
  await page.waitForSelector('section.job[data-job="alpha"][data-status="live"]');
  await page.waitForSelector('section.job[data-job="beta"][data-status="live"]');
  await page.waitForFunction('document.querySelectorAll(\'section.job[data-job="alpha"] tr[data-rank]\').length === 2');
  t.equal(await page.locator('section.job').count(), 2, 'one section per job');
  t.equal(await page.locator('section.job[data-job="beta"] tr[data-rank]').count(), 1, 'beta: its one rank');
  t.match(await page.locator('section.job[data-job="alpha"] .meta').textContent(), /^mirrored · cpu · 2 ranks/);
  t.match(await page.locator('section.job[data-job="beta"] .meta').textContent(), /^ps · cpu · 1 rank/);
  t.match(await page.locator('section.job[data-job="alpha"] .job-status').textContent(), /^live · 2 actors$/, "alpha's two heartbeating processes");

  // Kill beta's only process: no more reports, no more heartbeats.
  beta.kill('SIGKILL');
  await new Promise((r) => beta.once('exit', r));
  await page.waitForSelector('section.job[data-job="beta"][data-status="stopped"]', { timeout: 90_000 });
  t.equal(await page.locator('section.job[data-job="beta"] .job-status').textContent(), 'stopped');
  t.equal(await page.locator('section.job[data-job="alpha"]').getAttribute('data-status'), 'live', 'the other job is still live');
  const frozen = await page.locator('section.job[data-job="beta"] tr[data-rank="0"] .step').textContent();
  const alphaBefore = Number(await page.locator('section.job[data-job="alpha"] tr[data-rank="0"] .step').textContent());
  await page.waitForFunction(`Number(document.querySelector('section.job[data-job="alpha"] tr[data-rank="0"] .step')?.textContent) > ${alphaBefore}`);
  t.pass('alpha keeps advancing');
  t.equal(await page.locator('section.job[data-job="beta"] tr[data-rank="0"] .step').textContent(), frozen, "beta's last step stays as it was");
  mkdirSync(join(here, 'artifacts'), { recursive: true });
  await page.screenshot({ path: join(here, 'artifacts', 'monitor-processes.png'), fullPage: true });
  t.same(pageErrors, [], 'no script errors');
});
