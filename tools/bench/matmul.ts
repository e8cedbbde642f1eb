// n×n float32 matmul GFLOP/s on every TF.js backend that initialises here (native tensorflow,
// wasm, cpu) and on PyTorch (Debian's python3-torch), measured in the same run: rounds interleave
// the engines so load from other processes on the shared cores hits all of them alike, and each
// engine's figure is the median over its timed iterations.
//   npx nx run bench:matmul -- [--size 1024] [--rounds 5] [--backends tensorflow,wasm] [--torch /usr/bin/python3] [--torch-blas DIR] [--no-torch] [--no-report]
// --torch-blas DIR adds a second PyTorch row with LD_LIBRARY_PATH=DIR (e.g. Debian's OpenBLAS
// unpacked there), since python3-torch uses whatever libblas.so.3 the system selects.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { availableBackends, selectBackend, type BackendName } from '@actorflow/engine';
import { appendSection } from './report.ts';

const { values } = parseArgs({
  options: {
    size: { type: 'string' },
    rounds: { type: 'string' },
    'round-seconds': { type: 'string' },
    torch: { type: 'string' },
    'torch-blas': { type: 'string' },
    backends: { type: 'string' },
    'no-torch': { type: 'boolean' },
    'no-report': { type: 'boolean' },
  },
});
const n = Number(values.size ?? 1024);
const rounds = Number(values.rounds ?? 5);
const roundSeconds = Number(values['round-seconds'] ?? 1);
if (!Number.isInteger(n) || n < 16 || !Number.isInteger(rounds) || rounds < 1 || !(roundSeconds > 0)) {
  console.error('--size must be an integer >= 16, --rounds an integer >= 1, --round-seconds > 0');
  process.exit(2);
}
const flop = 2 * n ** 3;

interface Contender {
  readonly label: string;
  readonly detail: string;
  /** Runs for about `seconds` (at least one iteration, after one warm-up) and returns per-iteration seconds. */
  readonly time: (seconds: number) => Promise<number[]>;
  readonly close: () => void;
}

async function tfjs(name: BackendName): Promise<Contender> {
  const engine = await selectBackend({ backend: name });
  const { tf } = engine;
  return {
    label: `TF.js ${name}`,
    detail: engine.detail,
    time: async (seconds) => {
      await tf.setBackend(name);
      const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
      const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
      const step = (): number => {
        const t0 = performance.now();
        const c = tf.matMul(a as never, b as never);
        c.dataSync(); // forces the computation; the result comes back to JS as with torch's tensor
        c.dispose();
        return (performance.now() - t0) / 1000;
      };
      step();
      const times: number[] = [];
      const until = performance.now() + seconds * 1000;
      do times.push(step());
      while (performance.now() < until);
      a.dispose();
      b.dispose();
      return times;
    },
    close: () => undefined,
  };
}

const TORCH_PY = `
import json, sys, time, torch
n = int(sys.argv[1])
blas = sorted({l.split()[-1].rsplit('/', 1)[-1] for l in open('/proc/self/maps') if 'blas' in l.lower() and '.so' in l})
cfg = torch.__config__.show()
info = [p for p in cfg.replace(',', ' ').split() if p.startswith('BLAS_INFO=')]
print(json.dumps({'version': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas, 'blas_info': info[0][10:] if info else '?'}), flush=True)
a = torch.randn(n, n); b = torch.randn(n, n)
for line in sys.stdin:
    seconds = float(line)
    a @ b
    times = []; until = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter(); c = a @ b; times.append(time.perf_counter() - t0)
        if time.perf_counter() >= until: break
    print(json.dumps(times), flush=True)
`;

/** Which BLAS the torch process mapped, by library file name. */
function blasName(libs: string[], info: string): string {
  const names = libs.join(' + ') || info;
  if (libs.some((l) => /openblas/i.test(l))) return `OpenBLAS (${names})`;
  if (libs.some((l) => /mkl/i.test(l))) return `MKL (${names})`;
  if (libs.some((l) => /^libblas\.so\.3\.\d/.test(l))) return `netlib reference BLAS (${names})`;
  return names;
}

async function torch(python: string, blasDir?: string): Promise<Contender> {
  const env = { ...process.env, ...(blasDir !== undefined ? { LD_LIBRARY_PATH: blasDir } : {}) };
  const child: ChildProcessWithoutNullStreams = spawn(python, ['-c', TORCH_PY, String(n)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done === true)
      throw new Error(
        `${python} (PyTorch) ended: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}. Install Debian's python3-torch (apt-get install python3-torch) or pass --no-torch.`,
      );
    return r.value;
  };
  const info = JSON.parse(await next()) as { version: string; threads: number; blas: string[]; blas_info: string };
  return {
    label: `PyTorch${blasDir !== undefined ? ' (LD_LIBRARY_PATH BLAS)' : ''}`,
    detail: `torch ${info.version}, ${info.threads} thread(s), BLAS ${blasName(info.blas, info.blas_info)}${blasDir !== undefined ? ` from ${blasDir}` : ''}`,
    time: async (seconds) => {
      child.stdin.write(`${seconds}\n`);
      return JSON.parse(await next()) as number[];
    },
    close: () => child.stdin.end(),
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const contenders: Contender[] = [];
const only = values.backends?.split(',');
for (const name of await availableBackends()) if (only === undefined || only.includes(name)) contenders.push(await tfjs(name));
if (values['no-torch'] !== true) {
  const python = values.torch ?? '/usr/bin/python3';
  contenders.push(await torch(python));
  if (values['torch-blas'] !== undefined) contenders.push(await torch(python, values['torch-blas']));
}
const times = new Map<Contender, number[]>(contenders.map((c) => [c, []]));
for (let r = 1; r <= rounds; r++) {
  for (const c of contenders) {
    const ts = await c.time(roundSeconds);
    times.get(c)?.push(...ts);
    process.stderr.write(`round ${r}/${rounds} ${c.label}: ${ts.length} iteration(s), median ${(median(ts) * 1000).toFixed(1)} ms\n`);
  }
}
for (const c of contenders) c.close();

const gflops = (c: Contender): number => flop / median(times.get(c) ?? [Number.NaN]) / 1e9;
const torchRef = contenders.find((c) => c.label === 'PyTorch');
const rows = contenders.map((c) => {
  const ts = times.get(c) ?? [];
  const g = gflops(c);
  const vs = torchRef !== undefined ? `${(g / gflops(torchRef)).toFixed(2)}×` : '–';
  return `| ${c.label} | ${c.detail} | ${ts.length} | ${(median(ts) * 1000).toFixed(2)} | ${g.toFixed(1)} | ${vs} |`;
});
const table = ['| engine | what runs | iterations | median ms | GFLOP/s | vs PyTorch |', '|---|---|---|---|---|---|', ...rows];
console.log(table.join('\n'));
const native = contenders.find((c) => c.label === 'TF.js tensorflow');
if (native !== undefined && torchRef !== undefined) console.log(`native tensorflow / PyTorch = ${(gflops(native) / gflops(torchRef)).toFixed(2)} (target ≥ 0.8)`);
if (values['no-report'] !== true) {
  const args = [
    values.size !== undefined ? `--size ${n}` : '',
    values.rounds !== undefined ? `--rounds ${rounds}` : '',
    values['torch-blas'] !== undefined ? `--torch-blas ${values['torch-blas']}` : '',
  ]
    .filter((a) => a !== '')
    .join(' ');
  appendSection(`Matmul: ${n}×${n} float32, TF.js backends vs PyTorch (${rounds} interleaved rounds of ~${roundSeconds} s each)`, `npx nx run bench:matmul${args !== '' ? ` -- ${args}` : ''}`, [
    `GFLOP/s = 2·${n}³ / median iteration time; TF.js iterations include reading the result back (\`dataSync\`).`,
    '',
    ...table,
  ]);
}
