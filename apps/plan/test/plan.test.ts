// `nx run plan` as a process on the blueprint fixture of libs/cluster: the table, --out, --json,
// and the errors a person sees.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import type { ShardingPlan } from '@actorflow/cluster';
import { tsxCommand } from '@actorflow/test-child';

const root = resolve(import.meta.dirname, '../../..');
const blueprint = 'libs/cluster/test/fixtures/blueprint.json';

function plan(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const cmd = tsxCommand('apps/plan/main.ts', args);
    execFile(cmd.command, cmd.args, { cwd: root, env: { ...process.env, NATS_URL: '', INIT_CWD: root } }, (err, stdout, stderr) =>
      resolveRun({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
  });
}

t.test('a table with the reasons, and the plan as JSON', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'plan-')), 'plan.json');
  const r = await plan(['--blueprint', blueprint, '--use', 'gpus', '--model', 'mf', '--dataset', 'synthetic:small', '--batch-size', '512', '--out', out]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^plan: mf on synthetic:small, batch 512, strategy (ps|mirrored) \(auto\)/);
  t.match(r.stdout, /gpu-1 .*trainer-\d/);
  t.match(r.stdout, /gpu-2 .*trainer-\d/);
  t.notMatch(r.stdout, /cpu-1|eco-1/, 'only the GPU machines are selected');
  t.match(r.stdout, /predicted step: [\d.]+ ms/);
  t.match(r.stdout, /why:\n {2}- /);
  t.match(r.stdout, /plan written to /);
  const saved = JSON.parse(readFileSync(out, 'utf8')) as ShardingPlan;
  t.equal(saved.format, 'actorflow.plan/1');
  t.same(
    saved.machines.map((m) => m.name),
    ['gpu-1', 'gpu-2'],
  );
  t.equal(saved.batchSize, 512);
});

t.test('--json prints the plan; the energy selection', async (t) => {
  const r = await plan(['--blueprint', blueprint, '--use', 'energy', '--strategy', 'ps', '--json']);
  t.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as ShardingPlan;
  t.same(
    p.machines.map((m) => m.name),
    ['gpu-2', 'eco-1', 'eco-2'],
  );
  t.equal(p.strategy, 'ps');
  t.equal(p.requestedStrategy, 'ps');
});

t.test('--model-flag and --epochs: the model as the job builds it, and the whole training time', async (t) => {
  const r = await plan(['--blueprint', blueprint, '--use', 'cpus', '--dataset', 'synthetic:tiny', '--model-flag', 'dim=96', '--model-flag', 'optimizer=sgd', '--epochs', '5', '--json']);
  t.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as ShardingPlan;
  t.same(p.sizing?.hyper, { dim: 96 });
  t.equal(p.sizing?.optimizerSlots, 0);
  t.equal(p.sizing?.epochs, 5);
  t.ok(p.predicted.trainSeconds !== undefined && p.predicted.trainSeconds > 0);
});

t.test('errors: an empty selection, a bad policy, no agents', async (t) => {
  const thesis = 'libs/cluster/test/fixtures/thesis.json';
  const cpuOnly = join(mkdtempSync(join(tmpdir(), 'plan-')), 'cpu.json');
  writeFileSync(cpuOnly, JSON.stringify({ connections: [{ IP: '10.1.1.1', GPUS: 0, 'energy efficient': 'no' }] }));
  const empty = await plan(['--blueprint', cpuOnly, '--use=-gpus', '--dataset', 'synthetic:tiny']);
  t.not(empty.code, 0);
  t.match(empty.stderr, /--use gpus selects no machine: there are no machines with GPUs among 10-1-1-1 \(0 GPUs\)/);
  const bad = await plan(['--blueprint', thesis, '--use', 'fast']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /--use must be one of all, gpus, cpus, energy, got 'fast'/);
  const none = await plan(['--nats-url', 'nats://127.0.0.1:1', '--timeout-ms', '500']);
  t.not(none.code, 0);
  t.match(none.stderr, /plan/);
});
