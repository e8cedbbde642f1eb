// `nx serve node` logged in as its own node user (`node.<name>`, docs/SECURITY.md) from its
// environment, on a real nats-server with the printed per-role config: its inbox prefix is the
// default, it calibrates and serves the launcher's user, and its actors do not inherit its
// credentials. Another node's user is refused before it connects.
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';
import { connect, generateRoleCredentials, NatsServer, nodeCredentialsEnv, printNatsConfig, roleConnectOptions } from '@actorflow/bus';
import { nodeInfo, startActor } from '@actorflow/cluster';
import { clusterSubjects, logLineCodec } from '@actorflow/protocol';
import { tsxCommand } from '@actorflow/test-child';

const root = resolve(import.meta.dirname, '../../..');
const envActor = 'apps/node/test/fixtures/env-actor.ts';

async function until<T>(what: string, f: () => Promise<T | undefined>, deadlineMs = 90_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('the node agent as its node user', async (t) => {
  const creds = generateRoleCredentials('nu', { nodes: ['alpha', 'beta'] });
  const [alpha, beta] = creds.nodes ?? [];
  const server = await NatsServer.start({ config: printNatsConfig('nu', creds) });
  t.teardown(() => server.stop());
  const { NATS_USER, NATS_PASSWORD } = nodeCredentialsEnv(alpha!);

  const wrong = tsxCommand('apps/node/main.ts', ['--name', 'gamma']);
  const refused = spawnSync(wrong.command, wrong.args, { cwd: root, encoding: 'utf8', env: { ...process.env, NATS_URL: server.url, ...nodeCredentialsEnv(beta!) }, timeout: 120_000 });
  t.equal(refused.status, 2, 'another node’s user: a flag error');
  t.match(refused.stderr, /NATS user 'node\.beta' is another node agent's; this agent is --name gamma, whose user is node\.gamma/);

  // Only NATS_USER / NATS_PASSWORD: the agent takes _INBOX_node.alpha as its inbox prefix itself.
  const cmd = tsxCommand('apps/node/main.ts', ['--name', 'alpha', '--backend', 'cpu']);
  const agent = spawn(cmd.command, cmd.args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NATS_URL: server.url, NATS_USER, NATS_PASSWORD } });
  let output = '';
  agent.stdout.on('data', (d: Buffer) => (output += d.toString()));
  agent.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const agentExit = new Promise<number | null>((r) => agent.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
  });
  const launcher = await connect({ servers: [server.url], ...roleConnectOptions('launcher', creds), reconnect: false });
  t.teardown(() => launcher.close());

  const info = await until('the agent to answer the launcher', () => nodeInfo(launcher, 'alpha', { deadlineMs: 1000 }));
  t.ok((info.calibration.linkMBps ?? 0) > 0 && (info.calibration.requestMs ?? 0) > 0, 'it calibrated its link on its own subjects');

  const lines: string[] = [];
  const sub = launcher.subscribe(clusterSubjects.allLogs, { callback: (_e, m) => void lines.push(logLineCodec.decode(m.data).line) });
  await launcher.flush();
  await startActor(launcher, 'alpha', { job: 'nu', actor: 'plain', entry: envActor, args: [], leaseMs: 60_000 });
  const trainerEnv = { NATS_USER: 'nu-trainer', NATS_PASSWORD: 'x', NATS_INBOX_PREFIX: '_INBOX_nu-trainer' };
  await startActor(launcher, 'alpha', { job: 'nu', actor: 'given', entry: envActor, args: [], env: trainerEnv, leaseMs: 60_000 });
  const seen = await until('both actors’ lines', async () => (lines.filter((l) => l.startsWith('env-actor')).length >= 2 ? lines.filter((l) => l.startsWith('env-actor')) : undefined));
  sub.unsubscribe();
  t.same(
    seen.sort(),
    ['env-actor user= pass=unset inbox=', 'env-actor user=nu-trainer pass=set inbox=_INBOX_nu-trainer'],
    'actors do not inherit the node user; the start request’s credentials are theirs',
  );

  agent.kill('SIGTERM');
  t.equal(await agentExit, 0);
  t.notMatch(output, /Permissions Violation|fatal/i);
});
