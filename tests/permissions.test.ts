// Per-role NATS permissions end to end (issue 13): a real nats-server started with the generated
// users (a small max_payload, so pushes, replicas and replies go chunked over private inboxes) and
// real actor processes, each with its own role's credentials — the data shard, the aggregator, the
// trainers, the evaluator and a monitor — run a small ps job and a small mirrored job to the end.
// This test plays the launcher with the launcher's user (config, data info, final evaluation,
// checkpoint states, heartbeats). It is the check that the permissions are complete: a missing
// subject would stall an actor (a refused request is never answered) or close a subscription, and
// the server's permission errors would show in the actors' logs.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  NatsServer,
  connect,
  credentialsEnv,
  generateRoleCredentials,
  listActorServices,
  natsAuthConfig,
  requestLarge,
  requestWithRetry,
  retrying,
  roleConnectOptions,
  type NatsConnection,
  type Role,
  type RoleCredentials,
} from '@actorflow/bus';
import { evalReportCodec, subjects } from '@actorflow/protocol';
import { tsxCommand } from '@actorflow/test-child';

const root = fileURLToPath(new URL('..', import.meta.url));
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Proc {
  readonly name: string;
  out(): string;
  err(): string;
  readonly exited: Promise<number | null>;
  kill(): void;
}

function start(name: string, app: string, args: string[], env: Record<string, string>): Proc {
  const cmd = tsxCommand(`apps/${app}/main.ts`, args);
  const child = spawn(cmd.command, cmd.args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NATS_URL: '', NATS_USER: '', NATS_PASSWORD: '', NATS_INBOX_PREFIX: '', RANK: '', WORLD_SIZE: '', LOCAL_RANK: '', ACTORFLOW_ACTOR: '', ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { name, out: () => out, err: () => err, exited, kill: () => child.kill('SIGTERM') };
}

/** A job's actors, each started with its role's credentials in NATS_USER / NATS_PASSWORD. */
function actor(creds: Record<Role, RoleCredentials>, server: NatsServer, name: string, role: Role, app: string, args: string[]): Proc {
  return start(name, app, [...args, '--nats-url', server.url], credentialsEnv(role, creds));
}

async function launcherConnection(server: NatsServer, creds: Record<Role, RoleCredentials>): Promise<NatsConnection> {
  return connect({ servers: [server.url], ...roleConnectOptions('launcher', creds), name: 'launcher (test)' });
}

/** nats-server with the job's users, logging to a file (it logs every permissions violation). */
async function permissionedServer(t: Test, job: string, creds: Record<Role, RoleCredentials>): Promise<{ server: NatsServer; log: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'actorflow-perm-'));
  const logFile = join(dir, 'nats.log');
  const server = await NatsServer.start({ config: `${natsAuthConfig(job, creds)}log_file: ${JSON.stringify(logFile)}\n`, maxPayload: 8 * 1024 });
  t.teardown(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { server, log: () => readFileSync(logFile, 'utf8') };
}

function noViolations(t: Test, serverLog: string, procs: readonly Proc[]): void {
  t.notMatch(serverLog, /violation/i, 'nats-server refused nothing: the permissions cover the whole job');
  for (const p of procs) t.notMatch(`${p.out()}\n${p.err()}`, /permissions? violation/i, `${p.name}: no permission error in its logs`);
}

async function heartbeatsOf(nc: NatsConnection, job: string): Promise<Set<string>> {
  const seen = new Set<string>();
  nc.subscribe(`${job}.hb.*`, { callback: (_e, m) => void seen.add(m.subject.slice(job.length + 4)) });
  await nc.flush();
  return seen;
}

/** The evaluator's final score; retried while it is not yet listening (it starts with the others and loads its backend). */
async function finalEval(nc: NatsConnection, job: string) {
  const bytes = await retrying(() => requestLarge(nc, subjects.evalNow(job), enc.encode(JSON.stringify({ final: true })), { timeoutMs: 120_000 }), {
    nc,
    what: 'eval.now',
    deadlineMs: 120_000,
    attemptTimeoutMs: 120_000,
  });
  return evalReportCodec.decode(bytes);
}

t.test('a ps job with one user per role runs to the end', async (t) => {
  const job = 'permps';
  const creds = generateRoleCredentials(job);
  const { server, log } = await permissionedServer(t, job, creds);
  const nc = await launcherConnection(server, creds);
  t.teardown(() => nc.close());
  const beats = await heartbeatsOf(nc, job);
  const losses: number[] = [];
  nc.subscribe(subjects.loss, { callback: (_e, m) => void losses.push((JSON.parse(dec.decode(m.data)) as { step: number }).step) });

  const common = ['--job', job];
  const procs = [
    actor(creds, server, 'data-shard', 'data-shard', 'data-shard', [...common, '--keep-serving', '--dataset', 'synthetic:tiny', '--epochs', '2', '--batch-size', '256']),
    actor(creds, server, 'aggregator', 'aggregator', 'aggregator', [...common, '--keep-serving', '--strategy', 'ps', '--dim', '8']),
    actor(creds, server, 'evaluator', 'evaluator', 'evaluator', [...common, '--keep-serving', '--every', '0', '--backend', 'wasm']),
  ];
  // The monitor gets its credentials as flags instead of the environment.
  const monitor = start('monitor', 'monitor', ['--tail', '--job', job, '--nats-url', server.url, '--nats-user', creds.monitor.user, '--nats-pass', creds.monitor.pass], {});
  procs.push(monitor);
  t.teardown(() => procs.forEach((p) => p.kill()));

  // As the launcher: the data shards and the aggregator answer, then the trainers start.
  const info = JSON.parse(dec.decode(await requestWithRetry(nc, subjects.dataInfo(job), new Uint8Array(0), { deadlineMs: 120_000 }))) as { numUsers: number };
  t.ok(info.numUsers > 0, 'data info answered');
  const config = JSON.parse(dec.decode(await requestWithRetry(nc, subjects.ctl(job, 'config'), new Uint8Array(0), { deadlineMs: 120_000 }))) as { job: string; psShards: number };
  t.match(config, { job, psShards: 1 }, 'config answered');
  const trainers = [0, 1].map((r) => actor(creds, server, `trainer ${r}`, 'trainer', 'trainer', [...common, '--strategy', 'ps', '--rank', String(r), '--backend', 'wasm']));
  procs.push(...trainers);
  t.same(await Promise.all(trainers.map((p) => p.exited)), [0, 0], 'both trainers finish the epochs');
  t.ok(losses.length > 0, 'train.loss reports reached the launcher');

  const report = await finalEval(nc, job);
  t.ok(Number.isFinite(report.metrics.rmse), `final evaluation answered (rmse ${report.metrics.rmse})`);
  t.ok((await requestLarge(nc, subjects.psState(job, 0), new Uint8Array(0), { timeoutMs: 60_000 })).length > 8 * 1024, 'the shard state arrives (chunked)');
  t.match(JSON.parse(dec.decode(await requestLarge(nc, subjects.dataState(job, 0), new Uint8Array(0), { timeoutMs: 30_000 }))), {}, 'the data cursor arrives');
  const stats = JSON.parse(dec.decode(await requestLarge(nc, `${job}.ps.0.stats`, new Uint8Array(0), { timeoutMs: 30_000 }))) as { pushes: number; rejected: number };
  t.ok(stats.pushes > 0, `the shard applied ${stats.pushes} pushes`);
  t.equal(stats.rejected, 0, 'none rejected');
  const roles = (await listActorServices(nc, { job, timeoutMs: 2000 })).map((i) => i.metadata?.role).sort();
  t.same(roles, ['aggregator', 'data-shard', 'evaluator', 'monitor'], 'the live actors answer $SRV.INFO');
  for (const a of ['data-shard-0_1', 'aggregator-0_1', 'evaluator', 'trainer-0', 'trainer-1']) t.ok(beats.has(a), `heartbeat of ${a} heard`);
  t.match(monitor.out(), /"job":"permps"/, 'the monitor tails the job');
  noViolations(t, log(), procs);
  // The check above can fail: a refused publish (the launcher forging a push) is in the server's log.
  nc.publish(subjects.psPush(job, 0, 0), enc.encode('forged'));
  await nc.flush();
  while (!/Violation[^\n]*permps\.ps\.0\.push/.test(log())) await new Promise((r) => setTimeout(r, 100));
  t.match(log(), /Violation[^\n]*permps\.ps\.0\.push/, 'a refused publish shows in the server log');
});

t.test('a mirrored job with one user per role runs to the end (replica to the aggregator, collectives)', async (t) => {
  const job = 'permmir';
  const creds = generateRoleCredentials(job);
  const { server, log } = await permissionedServer(t, job, creds);
  const nc = await launcherConnection(server, creds);
  t.teardown(() => nc.close());
  const common = ['--job', job];
  const procs = [
    actor(creds, server, 'data-shard', 'data-shard', 'data-shard', [...common, '--keep-serving', '--dataset', 'synthetic:tiny', '--epochs', '2', '--batch-size', '256']),
    actor(creds, server, 'aggregator', 'aggregator', 'aggregator', [...common, '--keep-serving', '--strategy', 'mirrored', '--world-size', '2', '--dim', '8']),
    actor(creds, server, 'evaluator', 'evaluator', 'evaluator', [...common, '--keep-serving', '--every', '0', '--backend', 'wasm']),
  ];
  t.teardown(() => procs.forEach((p) => p.kill()));
  const trainers = [0, 1].map((r) =>
    actor(creds, server, `trainer ${r}`, 'trainer', 'trainer', [...common, '--strategy', 'mirrored', '--rank', String(r), '--snapshot-every', '2', '--backend', 'wasm']),
  );
  procs.push(...trainers);
  t.same(await Promise.all(trainers.map((p) => p.exited)), [0, 0], 'both ranks finish the epochs');
  t.match(procs[1]!.err(), /mirrored replica of step \d+ stored/, 'rank 0 wrote its replica (ctl.checkpoint, chunked)');
  const state = await requestLarge(nc, subjects.ctl(job, 'state'), new Uint8Array(0), { timeoutMs: 30_000 });
  t.ok(state.length > 8 * 1024, 'the launcher reads the replica (ctl.state, chunked)');
  const report = await finalEval(nc, job);
  t.ok(Number.isFinite(report.metrics.rmse), `the evaluator scored the mirrored snapshot (rmse ${report.metrics.rmse})`);
  noViolations(t, log(), procs);
});

t.test('a distributed kNN job with one user per role runs to the end (blocks to the aggregator, neighbours to the evaluator)', async (t) => {
  const job = 'permknn';
  const creds = generateRoleCredentials(job);
  const { server, log } = await permissionedServer(t, job, creds);
  const nc = await launcherConnection(server, creds);
  t.teardown(() => nc.close());
  const common = ['--job', job];
  const procs = [
    actor(creds, server, 'data-shard', 'data-shard', 'data-shard', [...common, '--keep-serving', '--dataset', 'synthetic:tiny']),
    actor(creds, server, 'aggregator', 'aggregator', 'aggregator', [...common, '--keep-serving', '--strategy', 'ps', '--model', 'knn', '--world-size', '2']),
    actor(creds, server, 'evaluator', 'evaluator', 'evaluator', [...common, '--keep-serving', '--every', '0', '--backend', 'wasm']),
  ];
  t.teardown(() => procs.forEach((p) => p.kill()));
  const trainers = [0, 1].map((r) => actor(creds, server, `trainer ${r}`, 'trainer', 'trainer', [...common, '--strategy', 'ps', '--rank', String(r), '--world-size', '2']));
  procs.push(...trainers);
  t.same(await Promise.all(trainers.map((p) => p.exited)), [0, 0], 'both kNN workers deliver their blocks');
  const report = await finalEval(nc, job);
  t.ok(Number.isFinite(report.metrics.rmse), `the evaluator scored the merged neighbours (rmse ${report.metrics.rmse})`);
  t.ok((await requestLarge(nc, `${job}.knn.neighbours`, new Uint8Array(0), { timeoutMs: 60_000 })).length > 8 * 1024, 'the launcher fetches the neighbour lists (chunked)');
  noViolations(t, log(), procs);
});

t.test('the launcher’s own broker: a mirrored job with one trainer user per rank runs to the end, without a violation', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'actorflow-perm-launch-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const job = start(
    'job',
    'job',
    ['--job', 'permrank', '--strategy', 'mirrored', '--trainers', '2', '--data-shards', '1', '--epochs', '1', '--eval-every', '0', '--backend', 'wasm', '--out', out],
    {},
  );
  t.teardown(() => job.kill());
  t.equal(await job.exited, 0, `the job finishes: ${job.err().slice(-1500)}`);
  const logs = ['trainer-0', 'trainer-1', 'aggregator-0', 'data-shard-0', 'evaluator'].map((a) => readFileSync(join(out, 'logs', `${a}.log`), 'utf8'));
  for (const l of logs) t.notMatch(l, /permissions? violation/i, 'no permission error in any actor’s log');
  t.notMatch(`${job.out()}${job.err()}`, /permissions? violation/i);
  t.match(logs[2], /mirrored replica of step \d+ stored/, 'rank 0 (its own user, the only one allowed) wrote the replica');
  t.ok(readFileSync(join(out, 'metrics.json'), 'utf8').includes('"rmse"'), 'metrics written');
});
