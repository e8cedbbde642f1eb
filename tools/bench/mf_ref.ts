// The "plain scalar JavaScript" reference of bench:vs-torch: mf_ref.c line for line in JavaScript
// (whole tables as Float32Arrays, gradients accumulated in place into per-table gradient arrays,
// lazy row-wise Adam over the touched rows, l2 on touched rows). No library code: it is the bar
// the library's training path (trainLocal) should reach. Prints one JSON line like mf_ref.c.
//   tsx mf_ref.ts train.csv test.csv users items dim epochs batch lr l2
import { readFileSync } from 'node:fs';

function load(path: string): { u: Int32Array; i: Int32Array; r: Float32Array; n: number } {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.length > 0);
  const u = new Int32Array(lines.length);
  const i = new Int32Array(lines.length);
  const r = new Float32Array(lines.length);
  lines.forEach((l, k) => {
    const [a, b, c] = l.split(',');
    u[k] = Number(a);
    i[k] = Number(b);
    r[k] = Number(c);
  });
  return { u, i, r, n: lines.length };
}

let rs = 42n;
const M64 = (1n << 64n) - 1n;
function rnd(): number {
  rs ^= (rs << 13n) & M64;
  rs ^= rs >> 7n;
  rs ^= (rs << 17n) & M64;
  return Number(rs >> 11n) * (1.0 / 9007199254740992.0);
}
function gauss(): number {
  const a = rnd() + 1e-12;
  const b = rnd();
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(6.283185307179586 * b);
}

interface Table {
  w: Float32Array;
  m: Float32Array;
  v: Float32Array;
  g: Float32Array;
  steps: Int32Array;
  mark: Uint8Array;
  dim: number;
}
function table(rows: number, dim: number, std: number): Table {
  const t = {
    w: new Float32Array(rows * dim),
    m: new Float32Array(rows * dim),
    v: new Float32Array(rows * dim),
    g: new Float32Array(rows * dim),
    steps: new Int32Array(rows),
    mark: new Uint8Array(rows),
    dim,
  };
  for (let k = 0; k < rows * dim; k++) t.w[k] = std * gauss();
  return t;
}
function adam(t: Table, row: number, lr: number, l2: number): void {
  const s = ++t.steps[row];
  const c1 = 1 - Math.pow(0.9, s);
  const c2 = 1 - Math.pow(0.999, s);
  const { w, m, v, g, dim } = t;
  const o = row * dim;
  for (let k = o; k < o + dim; k++) {
    const gr = g[k] + l2 * w[k];
    m[k] = 0.9 * m[k] + 0.1 * gr;
    v[k] = 0.999 * v[k] + 0.001 * gr * gr;
    w[k] -= (lr * (m[k] / c1)) / (Math.sqrt(v[k] / c2) + 1e-8);
    g[k] = 0;
  }
}

const [trainPath, testPath, U, I, dimArg, epochsArg, batchArg, lrArg, l2Arg] = process.argv.slice(2);
const tr = load(trainPath);
const te = load(testPath);
const d = Number(dimArg);
const epochs = Number(epochsArg);
const B = Number(batchArg);
const lr = Number(lrArg);
const l2 = Number(l2Arg);
const P = table(Number(U), d, 0.1);
const Q = table(Number(I), d, 0.1);
const bu = table(Number(U), 1, 0);
const bi = table(Number(I), 1, 0);
let mu = 0;
for (let k = 0; k < tr.n; k++) mu += tr.r[k];
mu /= tr.n;
const perm = Int32Array.from({ length: tr.n }, (_, k) => k);
const touchedU = new Int32Array(Number(U));
const touchedI = new Int32Array(Number(I));
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let ep = 0; ep < epochs; ep++) {
  for (let k = tr.n - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    const x = perm[k];
    perm[k] = perm[j];
    perm[j] = x;
  }
  for (let s = 0; s < tr.n; s += B) {
    const n = Math.min(B, tr.n - s);
    let nu = 0;
    let ni = 0;
    const scale = 2 / n;
    const Pw = P.w;
    const Qw = Q.w;
    const Pg = P.g;
    const Qg = Q.g;
    for (let e = s; e < s + n; e++) {
      const u = tr.u[perm[e]];
      const i = tr.i[perm[e]];
      const po = u * d;
      const qo = i * d;
      let dot = 0;
      for (let k = 0; k < d; k++) dot += Pw[po + k] * Qw[qo + k];
      const g = scale * (mu + bu.w[u] + bi.w[i] + dot - tr.r[perm[e]]);
      bu.g[u] += g;
      bi.g[i] += g;
      for (let k = 0; k < d; k++) {
        Pg[po + k] += g * Qw[qo + k];
        Qg[qo + k] += g * Pw[po + k];
      }
      if (P.mark[u] === 0) {
        P.mark[u] = 1;
        touchedU[nu++] = u;
      }
      if (Q.mark[i] === 0) {
        Q.mark[i] = 1;
        touchedI[ni++] = i;
      }
    }
    for (let k = 0; k < nu; k++) {
      adam(P, touchedU[k], lr, l2);
      adam(bu, touchedU[k], lr, l2);
      P.mark[touchedU[k]] = 0;
    }
    for (let k = 0; k < ni; k++) {
      adam(Q, touchedI[k], lr, l2);
      adam(bi, touchedI[k], lr, l2);
      Q.mark[touchedI[k]] = 0;
    }
  }
}
const trainSeconds = (performance.now() - t0) / 1000;
const cpuSeconds = ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cpu0));
let se = 0;
for (let e = 0; e < te.n; e++) {
  const u = te.u[e];
  const i = te.i[e];
  let dot = 0;
  for (let k = 0; k < d; k++) dot += P.w[u * d + k] * Q.w[i * d + k];
  const err = mu + bu.w[u] + bi.w[i] + dot - te.r[e];
  se += err * err;
}
console.log(JSON.stringify({ trainSeconds, cpuSeconds, testMse: se / te.n, ratings: tr.n * epochs }));
