// A trained model (out/<job>/model: params.bin + config.json) as a TF.js LayersModel: standard
// layers only (Embedding, Flatten, Dot, Add, Concatenate, Dense, ReLU), so `tf.loadLayersModel`
// loads it anywhere TF.js runs. Ids in (the model's internal user/item indices, int32 [n, 1]),
// scores out ([n, 1]). What it predicts is what our model predicts for evaluation:
//   - cold-start rows (users/items never in the training data) replaced by the trained mean, as
//     the evaluator does, when the config names its dataset (withColdStart);
//   - rating models clipped to the training rating range when config.json records it
//     (clip(x, lo, hi) = lo + relu6-style ReLU(maxValue hi−lo) of x − lo).
// Supported: mf (μ + b_u + b_i + p_u·q_i), ncf (MLP over [p_u, q_i], + μ) and neumf (GMF ⊙ ‖ MLP
// → the logit, as its predict returns; ranking, so never clipped). Others fail with an
// ExportError that says so.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tf } from '@actorflow/engine';
import { loadParams, type EmbeddingTable } from '@actorflow/embeddings';
import { groupRows } from '@actorflow/data';
import { loadJobDataset, type DatasetSpec, type JobConfig } from '@actorflow/feed';
import { createModel, type TrainableModel } from '@actorflow/models';
import { withColdStart, type ParamStore } from '@actorflow/strategies';

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** Models this exporter turns into a LayersModel. */
export const EXPORTABLE_MODELS: readonly string[] = ['mf', 'ncf', 'neumf'];

export interface SavedConfig extends JobConfig {
  readonly dataset?: DatasetSpec & { readonly split: string };
  readonly ratingRange?: readonly [number, number];
}

type LayersModel = ReturnType<Tf['model']>;
type SymbolicTensor = ReturnType<Tf['input']>;

export interface BuildOptions {
  /** Clip the output to [lo, hi] (rating models). */
  readonly ratingRange?: readonly [number, number] | undefined;
}

function table(p: ParamStore, name: string, model: string): EmbeddingTable {
  const t = p.tables[name];
  if (t === undefined) throw new ExportError(`${model}: the parameters have no table '${name}'`);
  return t;
}

function dense(p: ParamStore, name: string, size: number, model: string): Float32Array {
  const v = p.dense[name];
  if (v === undefined || v.length !== size) throw new ExportError(`${model}: dense '${name}' must have ${size} values, got ${v === undefined ? 'none' : v.length}`);
  return v;
}

/** Builds the LayersModel of `modelName` with the trained `params` as its weights. */
export function buildLayersModel(tf: Tf, modelName: string, params: ParamStore, o: BuildOptions = {}): LayersModel {
  const user = tf.input({ shape: [1], dtype: 'int32', name: 'user' });
  const item = tf.input({ shape: [1], dtype: 'int32', name: 'item' });
  /** ReLU Dense layers `<prefix>.mlp<l>.{w,b}` (sizes read from the parameters). */
  const mlp = (prefix: string, x: SymbolicTensor, fanIn0: number): { h: SymbolicTensor; fanIn: number } => {
    let h = x;
    let fanIn = fanIn0;
    for (let l = 0; params.dense[`${prefix}.mlp${l}.b`] !== undefined; l++) {
      const units = (params.dense[`${prefix}.mlp${l}.b`] as Float32Array).length;
      const w = dense(params, `${prefix}.mlp${l}.w`, fanIn * units, modelName);
      const b = dense(params, `${prefix}.mlp${l}.b`, units, modelName);
      h = tf.layers.dense({ units, activation: 'relu', name: `${prefix}_mlp${l}`, weights: [tf.tensor2d(w, [fanIn, units]), tf.tensor1d(b)] }).apply(h) as SymbolicTensor;
      fanIn = units;
    }
    if (h === x) throw new ExportError(`${modelName}: the parameters have no hidden layer (dense '${prefix}.mlp0.b')`);
    return { h, fanIn };
  };
  const head = (prefix: string, h: SymbolicTensor, fanIn: number, name: string): SymbolicTensor => {
    const w = dense(params, `${prefix}.out.w`, fanIn, modelName);
    const b = dense(params, `${prefix}.out.b`, 1, modelName);
    return tf.layers.dense({ units: 1, name, weights: [tf.tensor2d(w, [fanIn, 1]), tf.tensor1d(b)] }).apply(h) as SymbolicTensor;
  };
  const embed = (name: string, input: SymbolicTensor): SymbolicTensor => {
    const t = table(params, name, modelName);
    const e = tf.layers
      .embedding({ name: `${name}_embedding`, inputDim: t.rows, outputDim: t.dim, embeddingsInitializer: 'zeros', weights: [tf.tensor2d(t.data, [t.rows, t.dim])] })
      .apply(input) as SymbolicTensor;
    return tf.layers.flatten({ name: `${name}_flat` }).apply(e) as SymbolicTensor;
  };
  let raw: SymbolicTensor;
  if (modelName === 'mf') {
    const dot = tf.layers.dot({ axes: 1, name: 'dot' }).apply([embed('user', user), embed('item', item)]) as SymbolicTensor;
    raw = tf.layers.add({ name: 'biased' }).apply([dot, embed('userBias', user), embed('itemBias', item)]) as SymbolicTensor;
  } else if (modelName === 'ncf') {
    const dim = table(params, 'user', modelName).dim;
    const x = tf.layers.concatenate({ axis: 1, name: 'concat' }).apply([embed('user', user), embed('item', item)]) as SymbolicTensor;
    const { h, fanIn } = mlp('ncf', x, 2 * dim);
    raw = head('ncf', h, fanIn, 'out');
  } else if (modelName === 'neumf') {
    const gmf = tf.layers.multiply({ name: 'gmf' }).apply([embed('gmfUser', user), embed('gmfItem', item)]) as SymbolicTensor;
    const x = tf.layers.concatenate({ axis: 1, name: 'mlp_in' }).apply([embed('mlpUser', user), embed('mlpItem', item)]) as SymbolicTensor;
    const { h, fanIn } = mlp('neumf', x, 2 * table(params, 'mlpUser', modelName).dim);
    const both = tf.layers.concatenate({ axis: 1, name: 'gmf_mlp' }).apply([gmf, h]) as SymbolicTensor;
    const logit = head('neumf', both, table(params, 'gmfUser', modelName).dim + fanIn, 'logit');
    return tf.model({ inputs: [user, item], outputs: logit, name: 'actorflow_neumf' });
  } else {
    throw new ExportError(`${modelName} cannot be exported yet (exportable: ${EXPORTABLE_MODELS.join(', ')})`);
  }
  // + μ (a 1×1 Dense with kernel 1), then the optional clip to the rating range.
  const mu = dense(params, 'mean', 1, modelName)[0];
  const range = o.ratingRange;
  if (range === undefined) {
    const out = tf.layers.dense({ units: 1, name: 'rating', weights: [tf.tensor2d([[1]]), tf.tensor1d([mu])] }).apply(raw) as SymbolicTensor;
    return tf.model({ inputs: [user, item], outputs: out, name: `actorflow_${modelName}` });
  }
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new ExportError(`ratingRange [${lo}, ${hi}] in config.json is not a range`);
  const shifted = tf.layers.dense({ units: 1, name: 'mean_minus_lo', weights: [tf.tensor2d([[1]]), tf.tensor1d([mu - lo])] }).apply(raw) as SymbolicTensor;
  const clipped = tf.layers.reLU({ maxValue: hi - lo, name: 'clip' }).apply(shifted) as SymbolicTensor;
  const out = tf.layers.dense({ units: 1, name: 'rating', weights: [tf.tensor2d([[1]]), tf.tensor1d([lo])] }).apply(clipped) as SymbolicTensor;
  return tf.model({ inputs: [user, item], outputs: out, name: `actorflow_${modelName}` });
}

/** Writes `model.json` + `weights.bin` into `dir` (the files `model.save('file://dir')` writes, on every backend). */
export async function saveLayersModel(tf: Tf, model: LayersModel, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const weights = a.weightData === undefined ? new Uint8Array(0) : new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData));
      writeFileSync(join(dir, 'weights.bin'), weights);
      const json = {
        modelTopology: a.modelTopology,
        format: a.format ?? 'layers-model',
        generatedBy: a.generatedBy,
        convertedBy: 'actorflow export',
        weightsManifest: [{ paths: ['./weights.bin'], weights: a.weightSpecs ?? [] }],
      };
      writeFileSync(join(dir, 'model.json'), `${JSON.stringify(json)}\n`);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
}

export interface ExportResult {
  readonly model: string;
  readonly modelJson: string;
  readonly numUsers: number;
  readonly numItems: number;
  readonly ratingRange: readonly [number, number] | undefined;
  readonly coldStart: boolean;
}

/** Loads `modelDir` (params.bin + config.json), builds the LayersModel, saves it into `outDir`. */
export async function exportModel(tf: Tf, modelDir: string, outDir: string, log: (line: string) => void = () => undefined): Promise<ExportResult> {
  const configPath = join(modelDir, 'config.json');
  const paramsPath = join(modelDir, 'params.bin');
  if (!existsSync(configPath)) throw new ExportError(`${configPath} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
  if (!existsSync(paramsPath)) throw new ExportError(`${paramsPath} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as SavedConfig;
  if (!EXPORTABLE_MODELS.includes(config.model)) throw new ExportError(`${config.model} cannot be exported yet (exportable: ${EXPORTABLE_MODELS.join(', ')})`);
  const model = createModel(config.model, config.hyper) as TrainableModel<unknown>;
  const file = loadParams(paramsPath);
  let params: ParamStore = { tables: Object.fromEntries(file.tables.map((t) => [t.name, t])), dense: { ...file.dense } };
  let coldStart = false;
  if (config.dataset !== undefined && model.tableSpecs().some((s) => s.coldStart !== undefined)) {
    log(`loading ${config.dataset.source} (split ${config.dataset.split}, seed ${config.dataset.seed}) for the cold-start rows …`);
    const ds = await loadJobDataset(config.dataset, log);
    params = withColdStart(model, params, groupRows(ds.train, 'user'));
    coldStart = true;
  }
  const ratingRange = (model.task ?? 'rating') === 'rating' ? config.ratingRange : undefined;
  const layers = buildLayersModel(tf, config.model, params, { ratingRange });
  await saveLayersModel(tf, layers, outDir);
  layers.dispose();
  return {
    model: config.model,
    modelJson: join(outDir, 'model.json'),
    numUsers: table(params, config.model === 'neumf' ? 'gmfUser' : 'user', config.model).rows,
    numItems: table(params, config.model === 'neumf' ? 'gmfItem' : 'item', config.model).rows,
    ratingRange,
    coldStart,
  };
}
