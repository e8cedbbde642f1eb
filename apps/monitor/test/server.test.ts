// The HTTP side without a browser: routes, the SSE stream (snapshot first, then batched updates),
// clear errors when the port is taken; and the NATS message handling.
import t from 'tap';
import { get, request } from 'node:http';
import { createServer } from 'node:net';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { FlagError } from '@actorflow/bus';
import { evalReportCodec, heartbeatCodec, lossReportCodec, subjects } from '@actorflow/protocol';
import { WebServerError } from '../src/errors.ts';
import { parseMonitorFlags, usage } from '../src/flags.ts';
import { pageHtml } from '../src/page.ts';
import { startWebServer, type UpdateEvent } from '../src/server.ts';
import { MonitorState, type StateSnapshot } from '../src/state.ts';
import { handleHeartbeat, handleReport, heartbeatSubject, jobIdHeader } from '../src/subscribe.ts';
import { demoReports } from './helpers.ts';

function fetchText(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads server-sent events until `count` have arrived. */
function readEvents(url: string, count: number): Promise<{ event: string; data: string }[]> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: string }[] = [];
    const req = get(url, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data });
          if (events.length >= count) {
            req.destroy();
            resolve(events);
          }
        }
      });
      res.on('end', () => resolve(events));
    });
    req.on('error', (err) => (events.length >= count ? undefined : reject(err)));
  });
}

t.test('routes: page, state, 404, 405, HEAD, favicon', async (t) => {
  const state = new MonitorState();
  demoReports('a', { ranks: 1, steps: 3 }).loss.forEach((l) => state.onLoss(l));
  const web = await startWebServer({ state, port: 0 });
  t.teardown(() => web.close());
  t.match(web.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await fetchText(web.url);
  t.equal(page.status, 200);
  t.match(page.type, /text\/html/);
  t.match(page.body, /<canvas|EventSource\('events'\)/);
  t.notMatch(page.body, /https?:\/\/|src=/, 'no external resources');
  const st = await fetchText(`${web.url}state`);
  t.match(st.type, /application\/json/);
  const snap = JSON.parse(st.body) as StateSnapshot;
  t.equal(snap.seq, 3);
  t.equal(snap.jobs[0].ranks[0].points.length, 3);
  t.equal((await fetchText(`${web.url}nope`)).status, 404);
  t.equal((await fetchText(`${web.url}state`, 'POST')).status, 405);
  t.equal((await fetchText(`${web.url}state`, 'HEAD')).body, '');
  t.equal((await fetchText(`${web.url}`, 'HEAD')).status, 200);
  t.equal((await fetchText(`${web.url}favicon.ico`)).status, 204);
  t.match(pageHtml('a <b>'), /<title>a &#60;b&#62;<\/title>/, 'title escaped');
});

t.test('events: snapshot first, then batched updates; reports before any page are not queued', async (t) => {
  const state = new MonitorState({ job: 'j' });
  const web = await startWebServer({ state, port: 0, flushMs: 20, keepAliveMs: 30 });
  t.teardown(() => web.close());
  const { loss, evals } = demoReports('j', { ranks: 2, steps: 5, evalEvery: 5 });
  state.onLoss(loss[0]); // no page yet
  const got = readEvents(`${web.url}events`, 3);
  while (web.clients === 0) await new Promise((r) => setTimeout(r, 5));
  loss.slice(1).forEach((l) => state.onLoss(l));
  evals.forEach((e) => state.onEval(e));
  await new Promise((r) => setTimeout(r, 60)); // a keep-alive comment in between
  state.onLoss({ ...loss[0], step: 99 });
  const [first, second, third] = await got;
  t.equal(first.event, 'snapshot');
  t.equal((JSON.parse(first.data) as StateSnapshot).seq, 1);
  t.equal(second.event, 'update');
  const u = JSON.parse(second.data) as UpdateEvent;
  t.equal(u.loss.length, loss.length - 1);
  t.equal(u.eval.length, 1);
  t.equal(u.seq, loss.length + 1);
  t.equal((JSON.parse(third.data) as UpdateEvent).loss[0].step, 99);
  while (web.clients > 0) await new Promise((r) => setTimeout(r, 5));
  t.pass('the stream closes when the page goes away');
  const closing = readEvents(`${web.url}events`, 2);
  while (web.clients === 0) await new Promise((r) => setTimeout(r, 5));
  state.onLoss(loss[0]);
  await web.close();
  await web.close(); // idempotent
  t.same(
    (await closing).map((e) => e.event),
    ['snapshot'],
    'open streams end on close',
  );
});

t.test('listen errors are clear', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const state = new MonitorState();
  await t.rejects(startWebServer({ state, port }), new WebServerError(`cannot serve the web page: 127.0.0.1:${port} is already in use; pass --port N for another port, or --port 0 for a free one`));
  await t.rejects(startWebServer({ state, port: 70000 }), WebServerError);
  await t.rejects(startWebServer({ state, port: 0, host: 'no.such.host.invalid' }), /cannot serve the web page on no\.such\.host\.invalid:0/);
  const any = await startWebServer({ state, port: 0, host: '0.0.0.0' });
  t.match(any.url, /^http:\/\/localhost:\d+\/$/);
  await any.close();
  const v6 = await startWebServer({ state, port: 0, host: '::1' }).catch(() => undefined);
  if (v6 !== undefined) {
    t.match(v6.url, /^http:\/\/\[::1\]:\d+\/$/);
    await v6.close();
  }
});

t.test('messages: header filter, codecs, rejected garbage', async (t) => {
  const state = new MonitorState({ job: 'mine' });
  const h = (job: string) => {
    const x = natsHeaders();
    x.set('Job-Id', job);
    return x;
  };
  const [l] = demoReports('mine', { ranks: 1, steps: 1 }).loss;
  handleReport(state, subjects.loss, { headers: h('mine'), data: lossReportCodec.encode(l) });
  handleReport(state, subjects.loss, { headers: h('theirs'), data: new TextEncoder().encode('not even json') });
  handleReport(state, subjects.loss, { headers: undefined, data: lossReportCodec.encode({ ...l, job: 'theirs' }) });
  handleReport(state, subjects.eval, { headers: undefined, data: evalReportCodec.encode({ job: 'mine', step: 1, metrics: { 'hr@10': 0.5 }, ts: 1 }) });
  handleReport(state, subjects.loss, { headers: undefined, data: new TextEncoder().encode('{"job":"mine"}') });
  t.equal(state.seq, 2);
  t.equal(state.rejected, 1);
  t.match(state.lastRejection, /^train\.loss: /);
  t.equal(jobIdHeader({ headers: h('') }), undefined);
  t.equal(jobIdHeader({ headers: undefined }), undefined);
  t.same(Object.keys(state.job('mine')?.lastEval?.metrics ?? {}), ['hr@10'], 'any metric name');
});

t.test('flags', async (t) => {
  const f = parseMonitorFlags([], { isTTY: true, env: {} });
  t.not(f, 'help');
  if (f === 'help') return;
  t.same({ ...f, bus: undefined }, { port: 8686, host: '127.0.0.1', web: true, tty: true, color: true, maxPoints: 5000, tail: false, bus: undefined });
  const g = parseMonitorFlags(['--job', 'j1', '--port', '0', '--no-web', '--no-tty', '--no-color', '--max-points', '100', '--nats-url', 'nats://h:1'], { isTTY: true });
  t.same(g, {
    job: 'j1',
    port: 0,
    host: '127.0.0.1',
    web: false,
    tty: false,
    color: false,
    maxPoints: 100,
    tail: false,
    bus: { ...Object.fromEntries(Object.keys((g as { bus: object }).bus).map((k) => [k, undefined])), 'nats-url': 'nats://h:1' },
  });
  t.equal((parseMonitorFlags([], { isTTY: false }) as { tty: boolean }).tty, false, 'not a terminal: plain lines');
  t.match(parseMonitorFlags(['--tail'], { isTTY: true }), { tail: true, web: false }, '--tail: lines only, no web page');
  t.match(parseMonitorFlags(['--server', 'nats://h:2'], { isTTY: true }), { bus: { 'nats-url': 'nats://h:2' } }, '--server is --nats-url');
  t.throws(() => parseMonitorFlags(['--server', 'nats://h:2', '--nats-url', 'nats://h:3'], { isTTY: true }), /disagree/);
  t.equal((parseMonitorFlags([], { isTTY: true, env: { NO_COLOR: '1' } }) as { color: boolean }).color, false);
  t.equal(parseMonitorFlags(['--help'], { isTTY: false }), 'help');
  t.throws(() => parseMonitorFlags(['--bogus'], { isTTY: false }), FlagError);
  t.throws(() => parseMonitorFlags(['--job', 'a.b'], { isTTY: false }), /--job: job id 'a\.b' is not usable/);
  t.throws(() => parseMonitorFlags(['--port=-1'], { isTTY: false }), /--port must be an integer >= 0/);
  t.throws(() => parseMonitorFlags(['--port', '70000'], { isTTY: false }), /at most 65535/);
  t.throws(() => parseMonitorFlags(['--host', ' '], { isTTY: false }), /--host is empty/);
  t.match(usage, /--no-web/);
});

t.test('events: job status changes and the connection state go out in updates', async (t) => {
  let now = 1_000;
  const state = new MonitorState({ staleMs: 100, now: () => now });
  const web = await startWebServer({ state, port: 0, flushMs: 20 });
  t.teardown(() => web.close());
  state.onLoss(demoReports('a', { ranks: 1, steps: 1 }).loss[0]);
  const got = readEvents(`${web.url}events`, 2);
  while (web.clients === 0) await new Promise((r) => setTimeout(r, 5));
  now += 101;
  state.sweep();
  state.setConnection('reconnecting');
  const [snap, u1] = await got;
  t.equal(snap.event, 'snapshot');
  t.equal((JSON.parse(snap.data) as StateSnapshot).jobs[0].status, 'live');
  const u = JSON.parse(u1.data) as UpdateEvent;
  t.same(u.status, [{ job: 'a', status: 'stopped', lastSeen: 1_000, actors: 0 }]);
  t.equal(u.connection, 'reconnecting');
  t.same(u.loss, []);
});

t.test('heartbeat messages: decoded into the state, bad ones rejected; subjects', async (t) => {
  const state = new MonitorState({ job: 'j' });
  handleHeartbeat(state, 'j.hb.trainer-0', heartbeatCodec.encode({ job: 'j', role: 'trainer', rank: 0, actor: 'trainer-0', ts: 1 }));
  t.equal(state.job('j')?.actors.size, 1);
  handleHeartbeat(state, 'j.hb.x', new TextEncoder().encode('not msgpack of a heartbeat'));
  t.equal(state.rejected, 1);
  t.match(state.lastRejection, /^j\.hb\.x: /);
  t.equal(heartbeatSubject(undefined), '*.hb.*');
  t.equal(heartbeatSubject('job-1'), 'job-1.hb.*');
  t.equal(heartbeatSubject('a.b'), '*.hb.*', 'not a subject token: every job (the state filters)');
});
