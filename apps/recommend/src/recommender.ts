// A trained model (out/<job>/model: params.bin + config.json) turned into answers on the dataset's
// own ids: the top-N items for a user, without what the user already rated, and the items most
// similar to an item. The dataset is loaded again from the spec saved with the model (same source,
// split and seed → the same id encoding and training histories), so no id map has to be kept in sync.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '@actorflow/engine';
import { rowsForIds, type IdMap, type InteractionsBatch, groupRows } from '@actorflow/data';
import { loadParams, type EmbeddingTable } from '@actorflow/embeddings';
import { loadJobDataset, type JobConfig } from '@actorflow/feed';
import { topK } from '@actorflow/metrics';
import { createModel, type TrainableModel } from '@actorflow/models';
import { gather, type ParamStore } from '@actorflow/strategies';

export class RecommendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecommendError';
  }
}

export interface Scored {
  /** The dataset's id (MovieLens movieId, …); the internal index for synthetic data. */
  readonly id: string | number;
  readonly index: number;
  readonly score: number;
}

interface SavedConfig extends JobConfig {
  readonly dataset?: { readonly source: string; readonly split: string; readonly seed: number };
}

export class Recommender {
  readonly model: TrainableModel<unknown>;
  readonly params: ParamStore;
  readonly history: InteractionsBatch;
  readonly numItems: number;
  readonly #users: IdMap | undefined;
  readonly #items: IdMap | undefined;

  private constructor(model: TrainableModel<unknown>, params: ParamStore, history: InteractionsBatch, numItems: number, ids: { users?: IdMap; items?: IdMap }) {
    this.model = model;
    this.params = params;
    this.history = history;
    this.numItems = numItems;
    this.#users = ids.users;
    this.#items = ids.items;
  }

  /** Loads `dir/params.bin` and `dir/config.json` and the dataset named in the config. */
  static async open(dir: string, log: (line: string) => void = () => undefined): Promise<Recommender> {
    const configPath = join(dir, 'config.json');
    const paramsPath = join(dir, 'params.bin');
    for (const p of [configPath, paramsPath]) if (!existsSync(p)) throw new RecommendError(`${p} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as SavedConfig;
    if (config.dataset === undefined) throw new RecommendError(`${configPath} does not name its dataset (written by an older launcher); re-run the job`);
    const model = createModel(config.model, config.hyper);
    if ((model.input ?? 'ratings') === 'images') throw new RecommendError(`${config.model} is an image model; recommend works on recommender models`);
    const file = loadParams(paramsPath);
    const tables: Record<string, EmbeddingTable> = {};
    for (const t of file.tables) tables[t.name] = t;
    for (const spec of model.tableSpecs()) if (tables[spec.name] === undefined) throw new RecommendError(`${paramsPath} has no table '${spec.name}' that ${config.model} needs`);
    log(`loading ${config.dataset.source} (split ${config.dataset.split}, seed ${config.dataset.seed}) for ids and histories …`);
    const ds = await loadJobDataset({ source: config.dataset.source, split: config.dataset.split, seed: config.dataset.seed }, log);
    return new Recommender(model, { tables, dense: { ...file.dense } }, groupRows(ds.train, 'user'), ds.numItems, { ...(ds.users !== undefined ? { users: ds.users } : {}), ...(ds.items !== undefined ? { items: ds.items } : {}) });
  }

  /** Builds one from parts (tests, notebooks). */
  static fromParts(model: TrainableModel<unknown>, params: ParamStore, history: InteractionsBatch, numItems: number, ids: { users?: IdMap; items?: IdMap } = {}): Recommender {
    return new Recommender(model, params, history, numItems, ids);
  }

  #index(map: IdMap | undefined, raw: string, what: 'user' | 'item', count: number): number {
    if (map !== undefined) {
      const i = map.get(raw) ?? (/^-?\d+$/.test(raw) ? map.get(Number(raw)) : undefined);
      if (i === undefined) throw new RecommendError(`${what} '${raw}' is not in the dataset (it has ${map.size} ${what}s)`);
      return i;
    }
    const i = Number(raw);
    if (!Number.isInteger(i) || i < 0 || i >= count) throw new RecommendError(`${what} '${raw}' is not an index 0…${count - 1} of this synthetic dataset`);
    return i;
  }

  #itemId(index: number): string | number {
    return this.#items !== undefined ? this.#items.decode(index) : index;
  }

  /** Items the user rated in training (internal indices). */
  seen(user: string): Int32Array {
    const u = this.#index(this.#users, user, 'user', Number.MAX_SAFE_INTEGER);
    const h = rowsForIds(this.history, Int32Array.of(u));
    return h.items.slice();
  }

  /** The user's top `n` items by the model's score, training items excluded, best first. */
  recommend(engine: Engine, user: string, n: number): Scored[] {
    const m = this.model;
    if (m.scoreItems === undefined || m.rowsForScoring === undefined) throw new RecommendError(`${m.name} cannot rank items (it has no scoreItems)`);
    const u = this.#index(this.#users, user, 'user', Number.MAX_SAFE_INTEGER);
    const hist = rowsForIds(this.history, Int32Array.of(u));
    const scores = m.scoreItems(engine.tf, hist, gather(this.params, m.rowsForScoring(hist)));
    const top = topK(scores, n, hist.items);
    return Array.from(top, (i) => ({ id: this.#itemId(i), index: i, score: scores[i] }));
  }

  /**
   * The `n` items nearest to `item` by cosine similarity of their embedding rows — the item table
   * of the model (the first table with one row per item and more than one column, preferring one
   * whose name says item).
   */
  similar(item: string, n: number): Scored[] {
    const i = this.#index(this.#items, item, 'item', this.numItems);
    const candidates = Object.values(this.params.tables).filter((t) => t.rows === this.numItems && t.dim > 1);
    const table = candidates.find((t) => /item/i.test(t.name)) ?? candidates[0];
    if (table === undefined) throw new RecommendError(`${this.model.name} has no item embedding table to compare items with`);
    const d = table.dim;
    const norms = new Float32Array(table.rows);
    for (let r = 0; r < table.rows; r++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += table.data[r * d + k] ** 2;
      norms[r] = Math.sqrt(s);
    }
    const sims = new Float32Array(table.rows);
    for (let r = 0; r < table.rows; r++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += table.data[r * d + k] * table.data[i * d + k];
      sims[r] = norms[r] > 0 && norms[i] > 0 ? dot / (norms[r] * norms[i]) : 0;
    }
    const top = topK(sims, n, Int32Array.of(i));
    return Array.from(top, (j) => ({ id: this.#itemId(j), index: j, score: sims[j] }));
  }
}
