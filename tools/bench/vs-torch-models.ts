// Dense models against PyTorch, side by side in one run (issue 10: "NeuMF, AutoRec, Mult-VAE, MNIST
// CNN epochs on the native backend ≥ 1× PyTorch's examples/s"). Rounds interleave the engines
// (alternating which goes first), each its own process: the actorflow row is bench:model-epochs on
// TF.js's native tensorflow backend (trainLocal, the model's registered defaults, recommended
// optimizer and batch); the PyTorch row is the same network in tools/bench/torch_<model>.py on
// Debian's python3-torch, 1 thread by default:
//   mnist-cnn  torch_mnist_cnn.py  as many random 28×28 images as mnist:bundled's training split
//   neumf      torch_neumf.py      the same training ratings (and histories, for the negatives)
//   autorec    torch_autorec.py    the same item rows
//   multvae    torch_multvae.py    the same user rows
// model-epochs --write-data hands the PyTorch scripts exactly what actorflow trained on (a temp
// dir, removed at the end), so both sides train on the same examples per epoch; examples count
// as model-epochs counts them (a rating with its negatives once; item rows; user rows). The
// PyTorch scripts default to actorflow's algorithm (--torch-impl sparse: embedding tables under
// SparseAdam, lazy like actorflow's Adam); --torch-impl dense runs the textbook dense form.
// CPU time is each process's (all threads) over the training epochs: the native TF.js backend
// uses every core for its ops, PyTorch --torch-threads.
//   npx nx run bench:vs-torch-models -- [--rounds 2] [--models mnist-cnn,neumf,autorec,multvae] [--epochs 1] [--dataset synthetic:small]
//     [--limit-examples N] [--torch-impl sparse|dense] [--torch-threads 1] [--python /usr/bin/python3] [--no-report]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { appendSection } from './report.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const { values: v } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    models: { type: 'string', default: 'mnist-cnn,neumf,autorec,multvae' },
    epochs: { type: 'string', default: '1' },
    dataset: { type: 'string', default: 'synthetic:small' },
    'limit-examples': { type: 'string' },
    'torch-impl': { type: 'string', default: 'sparse' },
    'torch-threads': { type: 'string', default: '1' },
    'no-report': { type: 'boolean' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const rounds = Number(v.rounds);
const epochs = Number(v.epochs);
const python = String(v.python);
const torchImpl = String(v['torch-impl']);
const torchThreads = String(v['torch-threads']);
const limit = v['limit-examples'];
if (!(Number.isInteger(rounds) && rounds >= 1 && Number.isInteger(epochs) && epochs >= 1)) throw new Error(`--rounds and --epochs must be positive integers, got ${v.rounds} and ${v.epochs}`);
if (torchImpl !== 'sparse' && torchImpl !== 'dense') throw new Error(`--torch-impl must be sparse or dense, got ${torchImpl}`);

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

type Hyper = Readonly<Record<string, string | number | boolean>>;

/** A hyper-parameter the PyTorch script implements only at this value (the registered default). */
function need(model: string, h: Hyper, key: string, value: string | number): void {
  if (h[key] !== value) throw new Error(`the PyTorch ${model} implements ${key} = ${value} only, but the model runs with ${String(h[key])}`);
}

interface Model {
  readonly name: string;
  readonly dataset: string;
  readonly torchScript: string;
  /** What the PyTorch row trains on, for the report. */
  readonly data: string;
  /** The script's flags for the model's hyper-parameters (model-epochs --write-data's `hyper`), so the networks stay the same if the defaults change. */
  readonly torchArgs?: (h: Hyper) => string[];
}
const catalogue: readonly Model[] = [
  { name: 'mnist-cnn', dataset: 'mnist:bundled', torchScript: 'torch_mnist_cnn.py', data: "mnist:bundled's training split (PyTorch: as many random 28×28 images)" },
  {
    name: 'neumf',
    dataset: String(v.dataset),
    torchScript: 'torch_neumf.py',
    data: `${v.dataset}'s training ratings with their sampled negatives`,
    torchArgs: (h) => ['--dim', String(h.dim), '--mlp-dim', String(h.mlpDim), '--layers', String(h.layers), '--negatives', String(h.negatives), '--init-std', String(h.initStd)],
  },
  {
    name: 'autorec',
    dataset: String(v.dataset),
    torchScript: 'torch_autorec.py',
    data: `${v.dataset}'s training ratings as item rows`,
    torchArgs: (h) => {
      need('autorec', h, 'by', 'item');
      need('autorec', h, 'hiddenActivation', 'sigmoid');
      need('autorec', h, 'outputActivation', 'identity');
      need('autorec', h, 'denoise', 0);
      return ['--hidden', String(h.hidden), '--stacked', String(h.stacked), '--l2', String(h.l2), '--global-mean', String(h.globalMean)];
    },
  },
  {
    name: 'multvae',
    dataset: String(v.dataset),
    torchScript: 'torch_multvae.py',
    data: `${v.dataset}'s training ratings as user rows`,
    torchArgs: (h) => {
      need('multvae', h, 'activation', 'tanh');
      return ['--hidden', String(h.hidden), '--latent', String(h.latent), '--dropout', String(h.dropout), '--anneal-cap', String(h.annealCap), '--total-anneal-steps', String(h.totalAnnealSteps)];
    },
  },
];
const models = String(v.models)
  .split(',')
  .map((name) => {
    const m = catalogue.find((c) => c.name === name.trim());
    if (m === undefined) throw new Error(`--models: no PyTorch script for '${name}'; choose from ${catalogue.map((c) => c.name).join(', ')}`);
    return m;
  });

/** What model-epochs --write-data says about the data it trained on. */
interface DataMeta {
  readonly numUsers: number;
  readonly numItems: number;
  readonly globalMean: number;
  readonly examples: number;
  readonly batch: number;
  readonly optimizer: { readonly name: string; readonly lr?: number; readonly [k: string]: unknown };
  readonly history: boolean;
  readonly hyper: Hyper;
}

interface Sample {
  readonly secs: number;
  readonly cpu: number;
  readonly examples: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dataDir = mkdtempSync(join(tmpdir(), 'vs-torch-models-'));
const rows = ['| model | engine | examples/epoch | epoch s (per round) | cpu s/epoch (per round) | examples/s (median) | × PyTorch |', '|---|---|---|---|---|---|---|'];
const notes: string[] = [];
try {
  for (const m of models) {
    const ours: (Sample & { detail: string })[] = [];
    const theirs: Sample[] = [];
    let meta: DataMeta | undefined;
    const actorflow = (): void => {
      const args = [join(here, 'model-epochs.ts'), '--models', m.name, '--backends', 'tensorflow', '--dataset', m.dataset, '--epochs', String(epochs), '--no-report'];
      if (limit !== undefined) args.push('--limit-examples', limit);
      if (meta === undefined) args.push('--write-data', dataDir);
      // model-epochs prints `| model | backend: detail | examples/epoch | epoch (s) | cpu s/epoch | examples/s | metric |`.
      const line = run(join(root, 'node_modules/.bin/tsx'), args)
        .split('\n')
        .find((l) => l.startsWith(`| ${m.name} |`));
      if (line === undefined) throw new Error(`model-epochs printed no row for ${m.name}`);
      const cells = line.split('|').map((c) => c.trim());
      ours.push({ detail: cells[2], examples: Number(cells[3]), secs: Number(cells[4]), cpu: Number(cells[5]) });
      if (meta === undefined && m.name !== 'mnist-cnn') meta = JSON.parse(readFileSync(join(dataDir, `${m.name}.json`), 'utf8')) as DataMeta;
    };
    const pytorch = (): void => {
      const perEpoch = ours[0].examples;
      const args = [join(here, m.torchScript), '--epochs', String(epochs), '--threads', torchThreads];
      if (m.name === 'mnist-cnn') args.push('--examples', String(perEpoch));
      else {
        if (meta === undefined) throw new Error(`no data written for ${m.name}`);
        args.push('--train', join(dataDir, `${m.name}.train.csv`), '--users', String(meta.numUsers), '--items', String(meta.numItems), '--batch', String(meta.batch), '--impl', torchImpl);
        // The scripts implement Adam with only its learning rate set (every recommended optimizer here).
        const { name, lr, ...rest } = meta.optimizer;
        if (name !== 'adam' || Object.keys(rest).length > 0) throw new Error(`${m.torchScript} runs plain Adam; ${m.name}'s recommended optimizer is ${JSON.stringify(meta.optimizer)}`);
        if (lr !== undefined) args.push('--lr', String(lr));
        if (meta.history) args.push('--history', join(dataDir, `${m.name}.history.csv`));
        args.push(...(m.torchArgs?.(meta.hyper) ?? []));
      }
      const j = JSON.parse(run(python, args).trim().split('\n').at(-1) ?? '{}') as { trainSeconds: number; cpuSeconds: number; examples: number };
      if (j.examples !== perEpoch * epochs) throw new Error(`${m.torchScript} trained on ${j.examples} examples, actorflow on ${perEpoch} × ${epochs} epochs`);
      theirs.push({ secs: j.trainSeconds / epochs, cpu: j.cpuSeconds / epochs, examples: j.examples / epochs });
    };
    for (let round = 0; round < rounds; round++) {
      // actorflow goes first in round 1 (it writes the data), then the engines alternate.
      if (round % 2 === 0) {
        actorflow();
        pytorch();
      } else {
        pytorch();
        actorflow();
      }
      const a = ours[round];
      const t = theirs[round];
      console.error(
        `round ${round + 1}/${rounds} ${m.name}: actorflow ${a.secs.toFixed(2)} s (cpu ${a.cpu.toFixed(2)} s), PyTorch ${t.secs.toFixed(2)} s (cpu ${t.cpu.toFixed(2)} s) per epoch of ${a.examples}`,
      );
    }
    const n = ours[0].examples;
    const oursRate = median(ours.map((r) => r.examples / r.secs));
    const torchRate = median(theirs.map((r) => r.examples / r.secs));
    const per = (xs: Sample[], k: 'secs' | 'cpu'): string => xs.map((r) => r[k].toFixed(2)).join(', ');
    rows.push(`| ${m.name} | actorflow, ${ours[0].detail} | ${n} | ${per(ours, 'secs')} | ${per(ours, 'cpu')} | ${Math.round(oursRate)} | ${(oursRate / torchRate).toFixed(2)}× |`);
    rows.push(
      `| ${m.name} | PyTorch ${torchVersion} (Debian python3-torch, BLAS ${blas}), ${torchThreads} thread${torchThreads === '1' ? '' : 's'}${m.name === 'mnist-cnn' ? '' : `, ${torchImpl}`} | ${n} | ${per(theirs, 'secs')} | ${per(theirs, 'cpu')} | ${Math.round(torchRate)} | 1.00× |`,
    );
    notes.push(`${m.name} (${m.data}): per-round ratio ${ours.map((r, i) => `${(theirs[i].secs / r.secs).toFixed(2)}×`).join(', ')}`);
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(rows.join('\n'));
if (v['no-report'] !== true) {
  appendSection(`Dense models against PyTorch, ${epochs === 1 ? 'one epoch' : `${epochs} epochs`}`, `npx nx run bench:vs-torch-models -- ${process.argv.slice(2).join(' ')}`.trim(), [
    ...rows,
    '',
    `${epochs === 1 ? 'One epoch' : `${epochs} epochs`} per round${limit !== undefined ? ` (the first ${limit} training examples only)` : ''}, ${rounds} interleaved rounds (the engine that goes first alternates), seconds and CPU seconds per epoch. actorflow: bench:model-epochs (trainLocal on the native TF.js backend, which uses every core; registered defaults, recommended optimizer and batch); PyTorch: the same network, loss and optimizer settings (tools/bench/torch_<model>.py; ${torchImpl === 'sparse' ? 'embedding tables sparse under SparseAdam, lazy like actorflow' : 'dense tables and inputs under torch.optim.Adam'}) on the same examples. ${notes.join('; ')}.`,
  ]);
}
