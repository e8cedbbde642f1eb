// What a machine is, as its node agent reports it: cores, memory, GPUs (nvidia-smi), the TF.js
// backends that load, and a short calibration (a fused sparse kernel and a matmul; ~a few hundred ms).
import { execFile } from 'node:child_process';
import { cpus, freemem, totalmem } from 'node:os';
import { biasedDotMse } from '@actorflow/embeddings';
import { availableBackends, selectBackend, type Tf } from '@actorflow/engine';
import { CALIBRATION_DIM } from './planner.ts';
import type { GpuInfo } from '@actorflow/protocol';

/** Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader` output. */
export function parseNvidiaSmi(text: string): GpuInfo[] {
  const out: GpuInfo[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const cut = t.lastIndexOf(',');
    if (cut < 0) continue;
    const mem = /([\d.]+)\s*MiB/i.exec(t.slice(cut + 1));
    out.push({ name: t.slice(0, cut).trim(), memoryMiB: mem !== null ? Number(mem[1]) : 0 });
  }
  return out;
}

/** The GPUs nvidia-smi reports; none when it is absent or fails. */
export function detectGpus(binary = 'nvidia-smi', timeoutMs = 3000): Promise<GpuInfo[]> {
  return new Promise((resolve) => {
    execFile(binary, ['--query-gpu=name,memory.total', '--format=csv,noheader'], { timeout: timeoutMs }, (err, stdout) => resolve(err !== null ? [] : parseNvidiaSmi(stdout)));
  });
}

export function hostFacts(): { cores: number; cpuModel: string; memoryBytes: number; freeMemoryBytes: number } {
  const c = cpus();
  return { cores: Math.max(1, c.length), cpuModel: c[0]?.model.trim() ?? 'unknown', memoryBytes: totalmem(), freeMemoryBytes: freemem() };
}

/** Runs `f` repeatedly for about `budgetMs` (at least twice); returns the runs per second. */
function rate(budgetMs: number, f: () => void): number {
  f(); // warm-up
  let n = 0;
  const t0 = performance.now();
  let dt = 0;
  while (n < 2 || dt < budgetMs) {
    f();
    n++;
    dt = performance.now() - t0;
  }
  return n / (dt / 1000);
}

/** Examples per second of the fused biased-dot MSE kernel (MF's step), batch 2048, dim CALIBRATION_DIM. */
export function sparseKernelRate(budgetMs = 100): number {
  const B = 2048;
  const users = 1000;
  const items = 1000;
  const d = CALIBRATION_DIM;
  const user = new Int32Array(B);
  const item = new Int32Array(B);
  const target = new Float32Array(B);
  for (let e = 0; e < B; e++) {
    user[e] = (e * 7919) % users;
    item[e] = (e * 104729) % items;
    target[e] = 1 + (e % 5);
  }
  const rows = (n: number, dim: number): { rows: Int32Array; values: Float32Array } => ({
    rows: Int32Array.from({ length: n }, (_, i) => i),
    values: Float32Array.from({ length: n * dim }, (_, i) => ((i % 13) - 6) / 60),
  });
  const u = rows(users, d);
  const it = rows(items, d);
  const ub = rows(users, 1);
  const ib = rows(items, 1);
  const inputs = { user, item, dim: d, users: u, items: it, userBias: ub, itemBias: ib, mean: 3 };
  return rate(budgetMs, () => biasedDotMse(inputs, target)) * B;
}

/** GFLOP/s of an n×n matmul through TF.js. */
export function matmulRate(tf: Tf, budgetMs = 100, n = 128): number {
  const a = tf.randomUniform([n, n], -1, 1, 'float32', 1);
  const b = tf.randomUniform([n, n], -1, 1, 'float32', 2);
  const perSec = rate(budgetMs, () => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  });
  a.dispose();
  b.dispose();
  return (perSec * 2 * n ** 3) / 1e9;
}

export interface Calibrated {
  readonly backends: string[];
  readonly backend: string;
  readonly sparseExamplesPerSec: number;
  readonly matmulGflops: number;
  readonly ms: number;
}

/** Probes the backends, then measures the sparse kernel and a matmul on the best backend. */
export async function calibrate(o: { backend?: string; budgetMs?: number; log?: (line: string) => void } = {}): Promise<Calibrated> {
  const t0 = performance.now();
  const backends = await availableBackends();
  const engine = await selectBackend({ ...(o.backend !== undefined ? { backend: o.backend } : {}), ...(o.log !== undefined ? { log: o.log } : {}) });
  const budget = o.budgetMs ?? 100;
  const sparseExamplesPerSec = Math.round(sparseKernelRate(budget));
  const matmulGflops = Math.round(matmulRate(engine.tf, budget) * 1000) / 1000;
  return { backends, backend: engine.name, sparseExamplesPerSec, matmulGflops, ms: Math.round(performance.now() - t0) };
}
