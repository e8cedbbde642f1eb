// Integration: a real nats-server, the monitor's subscriptions and web server, and the page in
// headless Debian chromium (playwright-core). Reports published with the real codecs must show up
// on the page — history for a page opened late, live updates afterwards — and a screenshot is
// saved to test/artifacts/monitor.png (MONITOR_DOCS_SCREENSHOT=1 also copies it to docs/monitor.png).
import t from 'tap';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { NatsServer, connect, type NatsConnection } from '@actorflow/bus';
import { heartbeatCodec, subjects } from '@actorflow/protocol';
import { MonitorState } from '../src/state.ts';
import { startWebServer } from '../src/server.ts';
import { subscribeReports } from '../src/subscribe.ts';
import { demoReports, publishReports, requireChromium } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = join(here, 'artifacts');

t.test('the page shows history, updates live, and is captured', async (t) => {
  const executablePath = requireChromium();
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const watcher = await connect({ servers: [server.url] });
  const publisher = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await publisher.close();
    await watcher.close();
  });
  const state = new MonitorState({ job: 'movielens-mf' });
  const reports = subscribeReports(watcher, state);
  t.teardown(() => reports.stop());
  await watcher.flush();
  const web = await startWebServer({ state, port: 0, flushMs: 50 });
  t.teardown(() => web.close());

  // Before the page opens: 120 steps of two ranks, two evals, and another job's traffic (filtered out).
  const all = demoReports('movielens-mf', { ranks: 2, steps: 240, evalEvery: 40 });
  const early = { loss: all.loss.filter((l) => l.step <= 120), evals: all.evals.filter((e) => e.step <= 120) };
  await publishReports(publisher, early);
  await publishReports(publisher, demoReports('other-job', { ranks: 1, steps: 10 }));
  await t.resolves(
    waitFor(() => state.seq === early.loss.length + early.evals.length),
    'the monitor received the early reports',
  );

  const browser: Browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 640 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('requestfailed', (req) => {
    if (!req.url().endsWith('/events')) pageErrors.push(`request failed: ${req.url()}`);
  });
  await page.goto(web.url);
  await page.waitForSelector('#status[data-state=live]');
  t.equal(await page.title(), 'actorflow monitor · movielens-mf');
  t.equal(await page.locator('section.job').count(), 1, 'only the watched job');
  const chart = page.locator('section.job[data-job="movielens-mf"] canvas.loss-chart');
  await page.waitForFunction("document.querySelector('canvas.loss-chart')?.getAttribute('data-points') === '240'");
  t.equal(await chart.getAttribute('data-points'), '240', 'history: 120 steps × 2 ranks');
  t.equal(await page.locator('tr[data-rank="1"] .step').textContent(), '120');
  t.equal(await page.locator('figure.metric[data-metric="ndcg@10"] .value').textContent(), (all.evals[2].metrics['ndcg@10'] ?? 0).toFixed(4));

  // Live: the rest of the run, the last report of each rank marked done, a final eval.
  const late = { loss: all.loss.filter((l) => l.step > 120), evals: all.evals.filter((e) => e.step > 120) };
  const last = late.loss.slice(-2).map((l) => ({ ...l, done: true }));
  const final = { ...late.evals[late.evals.length - 1], final: true };
  await publishReports(publisher, { loss: [...late.loss.slice(0, -2), ...last], evals: [...late.evals.slice(0, -1), final] });
  await page.waitForFunction("document.querySelector('canvas.loss-chart')?.getAttribute('data-points') === '480'");
  t.equal(await chart.getAttribute('data-points'), '480', 'live updates: 240 steps × 2 ranks');
  const lastRank0 = all.loss[all.loss.length - 2];
  t.equal(await page.locator('tr[data-rank="0"] .loss').textContent(), lastRank0.loss.toFixed(4), 'latest loss of rank 0');
  t.equal(await page.locator('tr[data-rank="0"] .state').textContent(), 'done');
  t.match(await page.locator('.eval-line').textContent(), /step 240 \(final\)/);
  t.equal(await page.locator('figure.metric').count(), 3, 'one chart per metric');
  t.equal(await page.locator('figure.metric[data-metric="rmse"] canvas').getAttribute('data-points'), '6');
  t.equal(await page.locator('body').getAttribute('data-seq'), String(state.seq));
  t.match(await page.locator('section.job .meta').textContent(), /mirrored · wasm · 2 ranks \(2 done\) · step 240/);

  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, 'monitor.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(statSync(shot).size > 10_000, `screenshot saved to ${shot}`);
  if (process.env.MONITOR_DOCS_SCREENSHOT === '1') copyFileSync(shot, resolve(here, '../../../docs/monitor.png'));

  // A second page opened now starts from the snapshot with the whole history.
  const late2 = await browser.newPage();
  await late2.goto(web.url);
  await late2.waitForFunction("document.querySelector('canvas.loss-chart')?.getAttribute('data-points') === '480'");
  t.equal(web.clients, 2, 'two open event streams');
  await late2.close();
  t.same(pageErrors, [], 'no script errors, no failed requests');
});

t.test('two concurrent jobs show separately; a silent one as stopped; the badge follows the NATS connection', async (t) => {
  const executablePath = requireChromium();
  let server = await NatsServer.start();
  const port = server.port;
  t.teardown(() => server.stop());
  const watcher = await connect({ servers: [server.url] });
  const publisher = await connect({ servers: [server.url] });
  t.teardown(async () => {
    await publisher.close();
    await watcher.close();
  });
  const state = new MonitorState({ staleMs: 1500 }); // every job
  const reports = subscribeReports(watcher, state);
  t.teardown(() => reports.stop());
  await watcher.flush();
  const web = await startWebServer({ state, port: 0, flushMs: 50 });
  t.teardown(() => web.close());
  const beat = (nc: NatsConnection, job: string, actor: string, rank: number): void =>
    nc.publish(subjects.heartbeat(job, actor), heartbeatCodec.encode({ job, role: 'trainer', rank, actor, ts: Date.now(), pid: process.pid }));

  // Job "alive" keeps beating (as registerActorService does, faster); job "killed" reports, beats once, then goes silent.
  await publishReports(publisher, demoReports('alive', { ranks: 2, steps: 30, evalEvery: 10, strategy: 'mirrored' }));
  await publishReports(publisher, demoReports('killed', { ranks: 1, steps: 20, evalEvery: 10, strategy: 'ps', backend: 'cpu' }));
  beat(publisher, 'killed', 'trainer-0', 0);
  const beating = setInterval(() => {
    if (!publisher.isClosed()) for (const r of [0, 1]) beat(publisher, 'alive', `trainer-${r}`, r);
  }, 200);
  t.teardown(() => clearInterval(beating));

  const browser: Browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(web.url);
  await page.waitForSelector('#status[data-state=live]');
  await page.waitForSelector('section.job[data-job="killed"][data-status="stopped"]');
  t.equal(await page.locator('section.job').count(), 2, 'one section per job');
  t.equal(await page.locator('section.job[data-job="alive"]').getAttribute('data-status'), 'live');
  t.match(await page.locator('section.job[data-job="alive"] .job-status').textContent(), /^live · 2 actors$/);
  t.equal(await page.locator('section.job[data-job="killed"] .job-status').textContent(), 'stopped');
  t.equal(await page.locator('section.job[data-job="alive"] tr[data-rank]').count(), 2, 'alive: its two ranks');
  t.equal(await page.locator('section.job[data-job="killed"] tr[data-rank]').count(), 1, 'killed: its one rank');
  t.equal(await page.locator('section.job[data-job="killed"] tr[data-rank="0"] .step').textContent(), '20');
  t.equal(await page.locator('section.job[data-job="alive"] tr[data-rank="0"] .step').textContent(), '30', 'reports of one job do not leak into the other');
  t.match(await page.locator('section.job[data-job="killed"] .meta').textContent(), /^ps · cpu · 1 rank/);
  t.equal(await page.locator('section.job[data-job="killed"] figure.metric[data-metric="rmse"] canvas').getAttribute('data-points'), '2');
  t.equal(await page.locator('section.job[data-job="alive"] figure.metric[data-metric="rmse"] canvas').getAttribute('data-points'), '3');
  const stoppedState = (await (await fetch(`${web.url}state`)).json()) as ReturnType<MonitorState['snapshot']>;
  t.same(
    stoppedState.jobs.map((j) => [j.job, j.status]).sort(),
    [
      ['alive', 'live'],
      ['killed', 'stopped'],
    ],
    '/state says the same',
  );

  // The killed job's actor comes back: live again.
  beat(publisher, 'killed', 'trainer-0', 0);
  await page.waitForSelector('section.job[data-job="killed"][data-status="live"]');
  t.pass('a returning heartbeat marks the job live again');

  // The monitor loses its NATS server: the badge must stop saying live; it comes back with the server.
  await server.stop();
  await page.waitForSelector('#status[data-state=nats-down]');
  t.equal(await page.locator('#status').textContent(), 'NATS disconnected');
  server = await NatsServer.start({ port });
  await page.waitForSelector('#status[data-state=live]', { timeout: 30_000 });
  t.equal(state.connection, 'connected');
  const shot = join(artifacts, 'monitor-jobs.png');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  t.same(pageErrors, [], 'no script errors');
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
