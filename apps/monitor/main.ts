// npx nx run monitor [-- --job ID --port N --no-web --no-tty]
// Watches train.loss and train.eval: a live terminal view (or a line per second when stdout is not
// a terminal) and a local web page with the same live charts. The logic lives in src/.
import { actorLog, connectActor, exitOnSignals, registerActorService, runActor } from '@actorflow/bus';
import { parseMonitorFlags, usage } from './src/flags.ts';
import { LiveView } from './src/render.ts';
import { startWebServer } from './src/server.ts';
import { MonitorState } from './src/state.ts';
import { subscribeReports } from './src/subscribe.ts';
import { tailReports } from './src/tail.ts';

await runActor('monitor', usage, async () => {
  const f = parseMonitorFlags(process.argv.slice(2), { isTTY: process.stdout.isTTY === true, env: process.env });
  if (f === 'help') {
    console.log(usage);
    return;
  }
  const log = actorLog('monitor');
  const state = new MonitorState({ ...(f.job !== undefined ? { job: f.job } : {}), maxPoints: f.maxPoints });
  const conn = await connectActor(f.bus, { name: 'monitor', log });
  // Watching every job it belongs to none: no heartbeat then (`*` is no subject token). With --job it
  // beats like any actor (the launcher supervises it); monitors ignore role 'monitor' beats.
  await registerActorService(conn.nc, { role: 'monitor', job: f.job ?? '*', ...(f.job === undefined ? { heartbeatMs: 0 } : {}) });
  if (f.tail) {
    const tail = tailReports(conn.nc, (line) => process.stdout.write(`${line}\n`), f.job);
    await conn.nc.flush();
    log(`tailing train.loss / train.eval of ${f.job === undefined ? 'every job' : `job ${f.job}`} on ${conn.nc.getServer()}`);
    exitOnSignals(conn, () => tail.stop());
    return;
  }
  const reports = subscribeReports(conn.nc, state);
  await conn.nc.flush();
  const web = f.web ? await startWebServer({ state, port: f.port, host: f.host }) : undefined;
  log(`watching ${f.job === undefined ? 'every job' : `job ${f.job}`} on ${conn.nc.getServer()}`);
  if (web !== undefined) {
    if (f.tty) log(`web page: ${web.url}`);
    else console.log(`monitor: web page ${web.url}`);
  }
  const view = new LiveView(state, process.stdout, { tty: f.tty, color: f.color, ...(web !== undefined ? { url: web.url } : {}) });
  view.start();
  process.stdout.on('resize', () => view.invalidate());
  exitOnSignals(conn, async () => {
    view.stop();
    reports.stop();
    await web?.close();
  });
});
