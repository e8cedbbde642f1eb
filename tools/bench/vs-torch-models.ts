// Dense models against PyTorch, side by side in one run (issue 10: "NeuMF, AutoRec, Mult-VAE, MNIST
// CNN epochs on the native backend ≥ 1× PyTorch's examples/s"). Rounds interleave the engines,
// each its own process: the actorflow row is bench:model-epochs on TF.js's native tensorflow
// backend (trainLocal, the model's recommended optimizer and batch); the PyTorch row is the same
// network in tools/bench/torch_<model>.py on Debian's python3-torch, 1 thread.
// Today: mnist-cnn (torch_mnist_cnn.py). NeuMF, AutoRec and Mult-VAE have no PyTorch script yet.
//   npx nx run bench:vs-torch-models -- [--rounds 2] [--no-report]
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { appendSection } from './report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: v } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, 'no-report': { type: 'boolean' }, python: { type: 'string', default: '/usr/bin/python3' } } });
const rounds = Number(v.rounds);
const python = String(v.python);

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, cwd: root });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  return r.stdout;
}
const probe = spawnSync(python, ['-c', "import torch; c = torch.__config__.show(); print(torch.__version__); print(c.split('BLAS_INFO=')[1].split(',')[0] if 'BLAS_INFO=' in c else 'unknown')"], {
  encoding: 'utf8',
});
if (probe.status !== 0) {
  console.error(`bench:vs-torch-models: ${python} has no torch. Install Debian's PyTorch (apt-get install -y python3-torch) or pass --python PATH.`);
  process.exit(2);
}
const [torchVersion, blas] = probe.stdout.trim().split('\n');

interface Model {
  readonly name: string;
  readonly dataset: string;
  readonly torchScript: string;
}
const models: Model[] = [{ name: 'mnist-cnn', dataset: 'mnist:bundled', torchScript: 'torch_mnist_cnn.py' }];

const rows = ['| model | engine | examples/epoch | epoch s (per round) | examples/s (median) | × PyTorch |', '|---|---|---|---|---|---|'];
const notes: string[] = [];
for (const m of models) {
  const ours: { secs: number; examples: number; detail: string }[] = [];
  const theirs: { secs: number; cpu: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    // model-epochs prints `| model | backend: detail | examples/epoch | epoch (s) | examples/s | metric |`.
    const line = run(join(root, 'node_modules/.bin/tsx'), [join(here, 'model-epochs.ts'), '--models', m.name, '--backends', 'tensorflow', '--dataset', m.dataset, '--epochs', '1', '--no-report'])
      .split('\n')
      .find((l) => l.startsWith(`| ${m.name} |`));
    if (line === undefined) throw new Error(`model-epochs printed no row for ${m.name}`);
    const cells = line.split('|').map((c) => c.trim());
    ours.push({ detail: cells[2], examples: Number(cells[3]), secs: Number(cells[4]) });
    const j = JSON.parse(
      run(python, [join(here, m.torchScript), '--examples', String(Number(cells[3])), '--threads', '1'])
        .trim()
        .split('\n')
        .at(-1) ?? '{}',
    ) as { trainSeconds: number; cpuSeconds: number };
    theirs.push({ secs: j.trainSeconds, cpu: j.cpuSeconds });
    console.error(`round ${round + 1}/${rounds} ${m.name}: actorflow ${ours.at(-1)?.secs.toFixed(2)} s, PyTorch ${j.trainSeconds.toFixed(2)} s (cpu ${j.cpuSeconds.toFixed(2)} s)`);
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const n = ours[0].examples;
  const oursRate = median(ours.map((r) => r.examples / r.secs));
  const torchRate = median(theirs.map((r) => n / r.secs));
  rows.push(`| ${m.name} | actorflow, ${ours[0].detail} | ${n} | ${ours.map((r) => r.secs.toFixed(2)).join(', ')} | ${Math.round(oursRate)} | ${(oursRate / torchRate).toFixed(2)}× |`);
  rows.push(`| ${m.name} | PyTorch ${torchVersion} (Debian python3-torch, BLAS ${blas}), 1 thread | ${n} | ${theirs.map((r) => r.secs.toFixed(2)).join(', ')} | ${Math.round(torchRate)} | 1.00× |`);
  notes.push(`${m.name}: per-round ratio ${ours.map((r, i) => `${(theirs[i].secs / r.secs).toFixed(2)}×`).join(', ')}`);
}
console.log(rows.join('\n'));
if (v['no-report'] !== true) {
  appendSection('Dense models against PyTorch, one epoch', `npx nx run bench:vs-torch-models -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    `One epoch per round, ${rounds} interleaved rounds. actorflow: bench:model-epochs (trainLocal on the native TF.js backend, recommended optimizer and batch, mnist:bundled's training split); PyTorch: the same network (tools/bench/torch_mnist_cnn.py) on as many random 28×28 images, 1 thread. ${notes.join('; ')}.`,
  ]);
}
