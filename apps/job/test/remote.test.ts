// Cluster jobs (src/remote.ts): the plan file's checks, placement, the flags, and RemoteSpawner behind
// the real Supervisor, against a real nats-server and two real node agents (in this process, their
// actors real processes: libs/cluster's tiny test actor) — exit codes, logs, restarts, stop, and a
// machine that goes silent (its actors count as killed, their restarts go to the other machine).
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, NatsServer } from '@actorflow/bus';
import { NodeAgent, type NodeAgentOptions, type ShardingPlan } from '@actorflow/cluster';
import { JobFlagError, parseJobFlags, type JobPlan } from '../src/flags.ts';
import { actorPlacement, applyShardingPlan, ClusterJobError, loadShardingPlan, planFromBlueprint, plannerArgs, plannerModelArgs, planReport, RemoteSpawner, resolveClusterJob } from '../src/remote.ts';
import { Supervisor, type ActorExit } from '../src/supervisor.ts';

const dir = mkdtempSync(join(tmpdir(), 'remote-test-'));
const clusterRoot = resolve(import.meta.dirname, '../../../libs/cluster');
const tiny = 'test/fixtures/tiny-actor.ts';

const plan: ShardingPlan = {
  format: 'actorflow.plan/1',
  model: 'mf',
  dataset: 'synthetic:small',
  batchSize: 512,
  requestedStrategy: 'auto',
  strategy: 'ps',
  trainers: 2,
  dataShards: 2,
  psShards: 3,
  placements: [
    { role: 'trainer', index: 0, machine: 'h0', memoryBytes: 1 },
    { role: 'trainer', index: 1, machine: 'h1', memoryBytes: 1 },
    { role: 'data-shard', index: 0, machine: 'h1', memoryBytes: 1 },
    { role: 'data-shard', index: 1, machine: 'h0', memoryBytes: 1 },
    { role: 'ps-shard', index: 2, machine: 'h2', memoryBytes: 1 },
    { role: 'evaluator', index: 0, machine: 'h2', memoryBytes: 1 },
  ],
  machines: [],
  predicted: { stepMs: 10, computeMs: 5, communicationMs: 5, examplesPerSec: 1, epochSeconds: 1 },
  reasons: [],
  risks: [],
  assumptions: [],
};

const write = (name: string, v: unknown): string => {
  const f = join(dir, name);
  writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
  return f;
};

t.test('plan files: checked, placed, applied to the job', async (t) => {
  const file = write('plan.json', plan);
  t.same(loadShardingPlan(file).placements.length, 6);
  t.throws(() => loadShardingPlan(write('bad.json', '{')), { name: 'ClusterJobError', message: /not a readable JSON file/ });
  t.throws(() => loadShardingPlan(write('other.json', { format: 'x' })), /not a plan \(format 'actorflow\.plan\/1'/);
  t.throws(() => loadShardingPlan(write('s.json', { ...plan, strategy: 'sync' })), /strategy must be ps or mirrored/);
  t.throws(() => loadShardingPlan(write('t.json', { ...plan, trainers: 0 })), /trainers must be an integer >= 1/);
  t.throws(() => loadShardingPlan(write('p.json', { ...plan, psShards: 0 })), /psShards must be an integer >= 1/);
  t.equal(loadShardingPlan(write('m.json', { ...plan, strategy: 'mirrored', psShards: 0 })).psShards, 0, 'a mirrored plan has no parameter shards');
  t.throws(() => loadShardingPlan(write('n.json', { ...plan, placements: [{ role: 'trainer', index: 0, machine: 'a.b' }] })), /subject tokens/);
  t.same(
    [...actorPlacement(plan)],
    [
      ['trainer-0', 'h0'],
      ['trainer-1', 'h1'],
      ['data-shard-0', 'h1'],
      ['data-shard-1', 'h0'],
      ['aggregator-2', 'h2'],
      ['evaluator', 'h2'],
    ],
  );
  const job = parseJobFlags(['--job', 'j', '--plan', file, '--nats-url', 'nats://a:1,nats://b:2'], {}) as JobPlan;
  t.same(job.cluster, { plan: file });
  const applied = applyShardingPlan(job, plan, file);
  t.match(applied, { strategy: 'ps', trainers: 2, dataShards: 2, psShards: 3, batchSize: 512 });
  t.equal(applyShardingPlan(job, { ...plan, strategy: 'mirrored', psShards: 0 }, file).psShards, job.psShards, 'a mirrored plan keeps the job’s --ps-shards');
  t.throws(() => applyShardingPlan({ ...job, model: 'ncf' }, plan, file), /made for model mf, but the job trains ncf: pass --model mf/);
  const r = resolveClusterJob(job, dir);
  t.equal(r.placement?.get('evaluator'), 'h2');
  t.equal(resolveClusterJob({ ...job, cluster: undefined }, dir).placement, undefined, 'a local job is left alone');
  t.throws(() => resolveClusterJob({ ...job, natsUrl: undefined }, dir), { name: 'ClusterJobError', message: /need --nats-url/ });
  // --resume: the plan the job ran with, kept in its out folder (cluster-plan.json), not the --plan/--blueprint again.
  const ran = join(dir, 'ran');
  mkdirSync(ran, { recursive: true });
  writeFileSync(join(ran, 'cluster-plan.json'), JSON.stringify(plan));
  const resumed = resolveClusterJob({ ...job, out: ran, resume: ran, cluster: { plan: join(dir, 'moved-away.json') } }, dir);
  t.equal(resumed.placement?.get('evaluator'), 'h2', 'resumed on the plan it ran with (written when it started)');
  const again = resolveClusterJob({ ...job, out: ran, resume: ran, cluster: { blueprint: '/nowhere/machines.json', use: 'all' } }, dir);
  t.equal(again.sharding?.psShards, 3, 'a --blueprint job resumes on its saved plan without planning again');
  t.throws(() => resolveClusterJob({ ...job, out: join(dir, 'never-ran'), resume: join(dir, 'never-ran') }, dir), {
    name: 'ClusterJobError',
    message: /--resume .*never-ran: the job ran on --plan .*is gone.*copy that plan there/,
  });
  t.ok(new ClusterJobError('x') instanceof Error);
});

t.test('flags: --plan, --blueprint and --use', async (t) => {
  const bp = parseJobFlags(['--blueprint', '/m.json', '--use', 'gpus', '--strategy', 'mirrored', '--trainers', '3'], {}) as JobPlan;
  t.same(bp.cluster, { blueprint: '/m.json', use: 'gpus', strategy: 'mirrored', trainers: '3' });
  t.same((parseJobFlags(['--blueprint', '/m.json'], {}) as JobPlan).cluster, { blueprint: '/m.json', use: 'all' });
  t.throws(() => parseJobFlags(['--plan', '/p.json', '--blueprint', '/m.json'], {}), JobFlagError);
  t.throws(() => parseJobFlags(['--use', 'gpus'], {}), /--use selects machines of a --blueprint FILE/);
  t.equal((parseJobFlags([], {}) as JobPlan).cluster, undefined);
});

t.test('--blueprint: the planner sizes the model the job builds (hyper, model flags, batch, epochs)', async (t) => {
  const job = parseJobFlags(
    ['--blueprint', '/m.json', '--use', 'cpus', '--model', 'mf', '--hyper', 'dim=64', '--model-flag', 'init-std=0.05', '--model-flag', 'dense-updates', '--optimizer', 'sgd', '--lr', '0.1'],
    {},
  ) as JobPlan;
  t.same(plannerModelArgs(job.modelFlags), ['--model-flag', 'init-std=0.05', '--model-flag', 'dense-updates', '--hyper', 'dim=64', '--model-flag', 'lr=0.1', '--model-flag', 'optimizer=sgd']);
  const args = plannerArgs({ ...job, epochs: 7, batchSize: 256 }, job.cluster ?? {}, 'nats://x:1');
  const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
  t.equal(after('--epochs'), '7');
  t.equal(after('--batch-size'), '256');
  t.equal(after('--use'), 'cpus');
  t.equal(after('--nats-url'), 'nats://x:1');
  t.ok(args.includes('--json'));

  // The planner as the launcher runs it, against a broker with no agents: the blueprint's machines.
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const bp = resolve(clusterRoot, 'test/fixtures/blueprint.json');
  const small = parseJobFlags(['--blueprint', bp, '--use', 'cpus', '--model', 'mf', '--dataset', 'synthetic:tiny', '--epochs', '3'], {}) as JobPlan;
  const big = parseJobFlags(['--blueprint', bp, '--use', 'cpus', '--model', 'mf', '--dataset', 'synthetic:tiny', '--epochs', '3', '--model-flag', 'dim=128', '--optimizer', 'sgd'], {}) as JobPlan;
  const root = resolve(import.meta.dirname, '../../..');
  const a = planFromBlueprint(small, small.cluster ?? {}, root, server.url);
  const b = planFromBlueprint(big, big.cluster ?? {}, root, server.url);
  t.equal(a.sizing?.epochs, 3);
  t.ok(a.predicted.trainSeconds !== undefined && Math.abs(a.predicted.trainSeconds - a.predicted.epochSeconds * 3) < 0.01, 'the whole training time is predicted');
  t.equal(a.sizing?.optimizerSlots, 2, 'mf recommends adam: two slots');
  t.equal(b.sizing?.optimizerSlots, 0, '--optimizer sgd: no optimizer state');
  t.same(b.sizing?.hyper, { dim: 128 });
  t.ok(
    b.sizing !== undefined && a.sizing !== undefined && b.sizing.parameterBytes > 3 * a.sizing.parameterBytes,
    `dim 128 sizes a bigger model (${b.sizing?.parameterBytes} vs ${a.sizing?.parameterBytes} bytes)`,
  );
  t.throws(() => planFromBlueprint(small, { blueprint: '/nonexistent.json', use: 'cpus' }, root, server.url), /planning on --blueprint \/nonexistent.json failed: .*cannot be read/);
});

t.test('planReport: predicted against measured step time', async (t) => {
  t.same(planReport(plan, { 0: 100, 1: 300 }, 4), { strategy: 'ps', machines: ['h0', 'h1', 'h2'], predictedStepMs: 10, measuredStepMs: 20, measuredOverPredicted: 2 });
  t.same(planReport(plan, {}, undefined), { strategy: 'ps', machines: ['h0', 'h1', 'h2'], predictedStepMs: 10 }, 'nothing measured: only the prediction');
});

const agentOptions = (name: string): NodeAgentOptions => ({
  name,
  address: '127.0.0.1',
  cores: 2,
  cpuModel: 'test',
  memoryBytes: 8 * 1024 ** 3,
  freeMemory: () => 4 * 1024 ** 3,
  gpus: [],
  backends: ['cpu'],
  labels: {},
  energyEfficient: false,
  calibration: { sparseExamplesPerSec: 1e6, matmulGflops: 1, ms: 1 },
  root: clusterRoot,
  childEnv: { NATS_URL: `nats://agent-${name}:4222` },
  leaseMs: 60_000,
});

async function until<T>(what: string, f: () => T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('RemoteSpawner behind the Supervisor: exits, logs, restarts, stops, a lost machine', async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const ncA = await connect({ servers: [server.url] });
  const ncB = await connect({ servers: [server.url] });
  const nc = await connect({ servers: [server.url] });
  const a = await NodeAgent.start(ncA, agentOptions('na'));
  const b = await NodeAgent.start(ncB, agentOptions('nb'));
  t.teardown(async () => {
    await a.close();
    await b.close().catch(() => undefined);
    await nc.close();
    await ncA.close();
    await ncB.close().catch(() => undefined);
  });

  const notes: string[] = [];
  await t.rejects(RemoteSpawner.open(nc, { job: 'rj', placement: new Map([['x', 'nobody']]), log: () => undefined }), { name: 'ClusterJobError', message: /no node agent answers for nobody/ });
  // --resume: a machine of the saved plan that is gone moves its actors to those that answer; none answering still fails.
  const moved: string[] = [];
  // (Concurrently: each waits out the agents' answer deadline.)
  const [, resumed] = await Promise.all([
    t.rejects(RemoteSpawner.open(nc, { job: 'rj', placement: new Map([['x', 'nobody']]), log: () => undefined, missingAgents: 'move' }), {
      name: 'ClusterJobError',
      message: /no node agent answers for nobody/,
    }),
    RemoteSpawner.open(nc, {
      job: 'rm',
      placement: new Map([
        ['x', 'gone'],
        ['y', 'na'],
      ]),
      log: (l) => moved.push(l),
      missingAgents: 'move',
    }),
  ]);
  t.same(resumed.alive(), ['na'], 'the machine that did not answer counts as lost');
  t.ok(
    moved.some((l) => /node gone of the plan does not answer .*its actors start on na/.test(l)),
    moved.join('\n'),
  );
  resumed.close();
  const placement = new Map([
    ['quick', 'na'],
    ['crashy', 'nb'],
    ['steady', 'na'],
  ]);
  const remote = await RemoteSpawner.open(nc, { job: 'rj', placement, log: (l) => notes.push(l), lostAfterMs: 1500 });
  t.teardown(() => remote.close());
  t.same(remote.alive(), ['na', 'nb']);
  const lines = new Map<string, string[]>();
  const exits: ActorExit[] = [];
  const sup = new Supervisor({
    root: clusterRoot,
    env: { NATS_URL: 'nats://launcher-only:1', EXTRA: 'x' },
    spawner: remote,
    heartbeatTimeoutMs: 0,
    onLine: (name, line) => lines.set(name, [...(lines.get(name) ?? []), line]),
    onExit: (exit) => {
      exits.push(exit);
      if (exit.signal === 'SIGKILL') return { action: 'restart' };
      return exit.restarts < 1 ? { action: 'restart' } : { action: 'fail', why: 'twice' };
    },
  });
  sup.start({ name: 'steady', entry: tiny, args: ['--steady'], role: 'service' });
  sup.start({ name: 'quick', entry: tiny, args: ['--exit', '0'], role: 'worker' });
  await sup.waitForWorkers();
  t.match(lines.get('quick')?.[0], /^tiny ready --exit 0 actor=quick nats=nats:\/\/agent-na:4222$/, "the actor's log line came back; it got the agent's NATS_URL, not the launcher's");
  t.match(sup.list(), [
    { name: 'steady', node: 'na', running: true },
    { name: 'quick', node: 'na', running: false },
  ]);

  // An exit code travels back; the supervisor restarts the actor, as it would a local one.
  sup.start({ name: 'crashy', entry: tiny, args: ['--exit', '3'], role: 'service' });
  const failed = await sup.failed().catch((err: Error) => err);
  t.same(
    exits.map((e) => [e.name, e.code, e.restarts]),
    [
      ['crashy', 3, 0],
      ['crashy', 3, 1],
    ],
    'exit code 3 reached the restart policy twice (restarted once, then failed)',
  );
  t.match(failed, { name: 'ActorFailedError', message: /actor crashy twice/ });

  // A machine that stops answering: its running actor counts as killed and restarts on the other machine.
  sup.start({ name: 'crashy', entry: tiny, args: ['--long'], role: 'service' });
  await until('crashy to run on nb', () => (lines.get('crashy') ?? []).find((l) => l.includes('tiny ready --long')));
  await ncB.close(); // the agent is unreachable (its actor still runs: the agent's lease would stop it)
  exits.length = 0;
  await until('nb to be lost', () => (remote.alive().length === 1 ? true : undefined));
  await until('the exit of crashy', () => exits[0]);
  t.match(exits[0], { name: 'crashy', code: null, signal: 'SIGKILL' }, 'its actor counts as killed');
  t.ok(
    notes.some((l) => /node nb is lost \(its agent has not answered/.test(l)),
    'the launcher says which machine it lost and why',
  );
  t.same(remote.alive(), ['na']);
  t.ok(
    notes.some((l) => l === 'crashy: its machine nb is lost; starting it on na'),
    'the restart goes to the machine that is left',
  );
  await until('crashy to run again, on na', () => (sup.list().find((x) => x.name === 'crashy' && x.running && x.node === 'na') !== undefined ? true : undefined));
  await b.close().catch(() => undefined); // stops the orphan it still runs
  await sup.stopAll(2000);
  t.same(
    sup.list().map((x) => x.running),
    [false, false, false],
    'stopAll stopped the remote actors',
  );
});
