import t from 'tap';
import { selectBackend } from '@actorflow/engine';
import type { InteractionsBatch } from '@actorflow/data';
import { MultVAE, createModel, listModels, type GatheredParams, type MultVaeOptions, type StepResult } from '../mod.ts';
import { checkGradients, fill } from './gradcheck.ts';

const batch: InteractionsBatch = {
  user: new Int32Array([3, 7, 8]),
  offsets: new Int32Array([0, 3, 5, 8]),
  items: new Int32Array([0, 2, 4, 1, 2, 0, 3, 5]),
  values: new Float32Array([1, 1, 1, 1, 2, 1, 1, 1]),
};

const base: MultVaeOptions = { numItems: 6, hidden: [4], latent: 2, dropout: 0.5, activation: 'tanh', variational: true, annealCap: 0.2, totalAnnealSteps: 10 };

function gathered(model: MultVAE, rows: Record<string, Int32Array>, seed = 1): GatheredParams {
  const tables: Record<string, { rows: Int32Array; values: Float32Array }> = {};
  for (const s of model.tableSpecs()) tables[s.name] = { rows: rows[s.name], values: fill(rows[s.name].length * s.dim, seed, 0.8) };
  const dense: Record<string, Float32Array> = {};
  for (const s of model.denseSpecs()) dense[s.name] = fill(s.size, seed + s.name.length * 3, 0.8);
  return { tables, dense };
}

for (const backend of ['cpu', 'wasm']) {
  t.test(`gradients match finite differences (${backend})`, async (t) => {
    const { tf } = await selectBackend({ backend });
    for (const o of [base, { ...base, hidden: [4, 3] }, { ...base, variational: false }, { ...base, variational: false, dropout: 0, activation: 'sigmoid' as const }]) {
      const model = new MultVAE(o);
      const p = gathered(model, model.rowsFor(batch));
      const ctx = { seed: 4, epoch: 2, step: 1 };
      const res = model.computeGradients(tf, batch, p, ctx);
      t.equal(res.count, 3);
      checkGradients(t, p, res, (q) => model.computeGradients(tf, batch, q, ctx).loss, { tol: 3e-3 });
    }
  });
}

t.test('loss: multinomial NLL + β·KL with β annealed; inference has no noise', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const model = new MultVAE({ ...base, dropout: 0 });
  t.equal(model.beta(0), 0);
  t.equal(model.beta(1), 0.1);
  t.equal(model.beta(100), 0.2, 'capped');
  const p = gathered(model, model.rowsFor(batch));
  const logits = model.predict(tf, batch, p);
  t.equal(logits.length, 3 * 6);
  t.same(model.scoreItems(tf, batch, p), logits, 'deterministic scores');
  // At step 0 (β = 0) the loss is the NLL of the sampled code; with ε ≈ small it is near the NLL at μ.
  let nll = 0;
  for (let k = 0; k < 3; k++) {
    const row = logits.subarray(k * 6, (k + 1) * 6);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    for (let e = batch.offsets[k]; e < batch.offsets[k + 1]; e++) nll -= batch.values[e] * (row[batch.items[e]] - lse);
  }
  const dae = new MultVAE({ ...base, dropout: 0, variational: false });
  const pd = gathered(dae, dae.rowsFor(batch));
  const ld = dae.predict(tf, batch, pd);
  let nllD = 0;
  for (let k = 0; k < 3; k++) {
    const row = ld.subarray(k * 6, (k + 1) * 6);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    for (let e = batch.offsets[k]; e < batch.offsets[k + 1]; e++) nllD -= batch.values[e] * (row[batch.items[e]] - lse);
  }
  t.ok(Math.abs(dae.computeGradients(tf, batch, pd).loss - nllD / 3) < 1e-5, 'DAE without dropout: loss = mean NLL of predict');
  t.ok(Number.isFinite(nll) && nll > 0);
  const s0 = model.computeGradients(tf, batch, p, { seed: 1, epoch: 0, step: 0 });
  const s5 = model.computeGradients(tf, batch, p, { seed: 1, epoch: 0, step: 5 });
  t.ok(s5.loss > s0.loss, 'the KL term enters as β grows');
});

t.test('noise per (seed, epoch, user): a batch of 3 = its halves, count-weighted', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  const model = new MultVAE({ ...base, hidden: [4, 3] });
  const p = gathered(model, model.rowsFor(batch));
  const ctx = { seed: 11, epoch: 1, step: 3 };
  const whole = model.computeGradients(tf, batch, p, ctx);
  t.same(model.computeGradients(tf, batch, p, ctx), whole, 'same context, same result');
  t.not(model.computeGradients(tf, batch, p, { ...ctx, epoch: 2 }).loss, whole.loss, 'another epoch, other noise');
  const part = (a: number, b: number): InteractionsBatch => {
    const s = batch.offsets[a];
    const e = batch.offsets[b];
    return { user: batch.user.subarray(a, b), offsets: batch.offsets.slice(a, b + 1).map((o) => o - s), items: batch.items.subarray(s, e), values: batch.values.subarray(s, e) };
  };
  const parts: StepResult[] = [part(0, 1), part(1, 3)].map((b) => model.computeGradients(tf, b, p, ctx));
  const w = [1 / 3, 2 / 3];
  t.ok(Math.abs(parts[0].loss * w[0] + parts[1].loss * w[1] - whole.loss) < 1e-5, 'loss');
  for (const [name, g] of Object.entries(whole.dense)) {
    t.ok(
      g.every((v, i) => Math.abs(parts[0].dense[name][i] * w[0] + parts[1].dense[name][i] * w[1] - v) < 1e-5),
      `dense ${name}`,
    );
  }
  const g = whole.sparse['enc0.w'];
  const dim = 4;
  for (let r = 0; r < g.rows.length; r++) {
    let ok = true;
    for (let d = 0; d < dim; d++) {
      let v = 0;
      parts.forEach((pt, j) => {
        const i = pt.sparse['enc0.w'].rows.indexOf(g.rows[r]);
        if (i >= 0) v += w[j] * pt.sparse['enc0.w'].values[i * dim + d];
      });
      if (Math.abs(v - g.values[r * dim + d]) > 1e-5) ok = false;
    }
    t.ok(ok, `enc0.w row ${g.rows[r]}`);
  }
});

t.test('registry and bad input', async (t) => {
  const { tf } = await selectBackend({ backend: 'cpu' });
  t.ok(listModels().some((m) => m.name === 'multvae'));
  t.ok(listModels().some((m) => m.name === 'multdae'));
  const vae = createModel('multvae', { numItems: 50 }) as MultVAE;
  t.equal(vae.name, 'multvae');
  t.equal(vae.task, 'ranking');
  t.equal(vae.input, 'interactions');
  t.same(
    vae.tableSpecs().map((s) => [s.name, s.rows, s.dim]),
    [['enc0.w', 50, 600]],
  );
  t.same(
    vae.denseSpecs().map((s) => [s.name, s.size]),
    [
      ['enc0.b', 600],
      ['enc1.w', 600 * 400],
      ['enc1.b', 400],
      ['dec0.w', 200 * 600],
      ['dec0.b', 600],
      ['dec1.w', 600 * 50],
      ['dec1.b', 50],
    ],
  );
  const dae = createModel('multdae', { numItems: 50, hidden: '20,10', latent: 5 }) as MultVAE;
  t.equal(dae.name, 'multdae');
  t.same(
    dae.denseSpecs().map((s) => s.name),
    ['enc0.b', 'enc1.w', 'enc1.b', 'enc2.w', 'enc2.b', 'dec0.w', 'dec0.b', 'dec1.w', 'dec1.b', 'dec2.w', 'dec2.b'],
  );
  t.throws(() => createModel('multdae', { numItems: 5, annealCap: 0.1 }), /no hyper-parameter 'annealCap'/);
  t.throws(() => createModel('multvae', { numItems: 0 }), /numItems > 0/);
  t.throws(() => createModel('multvae', { numItems: 5, dropout: 1.5 }), /dropout must be in/);
  t.throws(() => createModel('multvae', { numItems: 5, latent: 0 }), /latent/);
  t.throws(() => createModel('multvae', { numItems: 5, totalAnnealSteps: 0 }), /totalAnnealSteps/);
  t.throws(() => createModel('multvae', { numItems: 5, hidden: '' }), /hidden sizes/);
  const model = new MultVAE(base);
  const p = gathered(model, model.rowsFor(batch));
  t.throws(() => model.computeGradients(tf, { user: new Int32Array(0), offsets: new Int32Array([0]), items: new Int32Array(0), values: new Float32Array(0) }, p), /empty batch/);
  t.throws(() => model.computeGradients(tf, { ...batch, items: batch.items.map((i) => i + 3) }, p), /out of range/);
  t.throws(() => model.computeGradients(tf, batch, { ...p, dense: {} }), /dense 'enc0.b' is missing/);
  t.equal(model.scoreItems(tf, { user: new Int32Array(0), offsets: new Int32Array([0]), items: new Int32Array(0), values: new Float32Array(0) }, p).length, 0);
  // A user with no clicks scores from the biases alone (no NaN from the normalisation).
  const empty: InteractionsBatch = { user: new Int32Array([1]), offsets: new Int32Array([0, 0]), items: new Int32Array(0), values: new Float32Array(0) };
  t.ok(model.scoreItems(tf, empty, p).every(Number.isFinite));
});
