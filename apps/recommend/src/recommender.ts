// A trained model (out/<job>/model: params.bin + config.json) turned into answers on the dataset's
// own ids: the top-N items for a user, without what the user already rated, and the items most
// similar to an item. The dataset is loaded again from the spec saved with the model (same source,
// split and seed → the same id encoding and training histories), so no id map has to be kept in sync.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '@actorflow/engine';
import { rowsForIds, type IdMap, type InteractionsBatch, groupRows } from '@actorflow/data';
import { loadParams, type EmbeddingTable } from '@actorflow/embeddings';
import { loadJobDataset, type DatasetSpec, type JobConfig } from '@actorflow/feed';
import { topK } from '@actorflow/metrics';
import { KNN_MODEL, KnnModel, knnSettings, prepareKnn, readNeighbours, type KnnHyper, type Neighbours } from '@actorflow/knn';
import { createModel, type TrainableModel } from '@actorflow/models';
import { clipToRange, gather, type ParamStore } from '@actorflow/strategies';

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
  readonly dataset?: DatasetSpec & { readonly split: string };
  /** The lowest and highest training rating (written by the launcher): rating models' scores are clipped to it. */
  readonly ratingRange?: readonly [number, number];
}

/** A kNN model (neighbour lists, no parameters): item-based lists are the items' neighbours. */
interface KnnScorer {
  readonly model: KnnModel;
  readonly neighbours: Neighbours;
  readonly itemBased: boolean;
}

export class Recommender {
  /** The model's name (as trained). */
  readonly name: string;
  readonly model: TrainableModel<unknown> | undefined;
  readonly params: ParamStore;
  readonly knn: KnnScorer | undefined;
  readonly history: InteractionsBatch;
  readonly numItems: number;
  /** Rating models: predicted ratings are shown clipped to this (the training data's range). */
  ratingRange: readonly [number, number] | undefined;
  readonly #users: IdMap | undefined;
  readonly #items: IdMap | undefined;

  private constructor(model: TrainableModel<unknown> | KnnScorer, params: ParamStore, history: InteractionsBatch, numItems: number, ids: { users?: IdMap; items?: IdMap }) {
    const knn = 'neighbours' in model ? model : undefined;
    this.knn = knn;
    this.model = knn === undefined ? (model as TrainableModel<unknown>) : undefined;
    this.name = knn !== undefined ? KNN_MODEL : (model as TrainableModel<unknown>).name;
    this.params = params;
    this.history = history;
    this.numItems = numItems;
    this.#users = ids.users;
    this.#items = ids.items;
    this.ratingRange = undefined;
  }

  /** Loads `dir/params.bin` and `dir/config.json` and the dataset named in the config. */
  static async open(dir: string, log: (line: string) => void = () => undefined): Promise<Recommender> {
    const configPath = join(dir, 'config.json');
    const paramsPath = join(dir, 'params.bin');
    if (!existsSync(configPath)) throw new RecommendError(`${configPath} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as SavedConfig;
    if (config.dataset === undefined) throw new RecommendError(`${configPath} does not name its dataset (written by an older launcher); re-run the job`);
    if (config.model === KNN_MODEL) return Recommender.#openKnn(dir, config, log);
    const model = createModel(config.model, config.hyper);
    if ((model.input ?? 'ratings') === 'images') throw new RecommendError(`${config.model} is an image model; recommend works on recommender models`);
    if (!existsSync(paramsPath)) throw new RecommendError(`${paramsPath} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
    const file = loadParams(paramsPath);
    const tables: Record<string, EmbeddingTable> = {};
    for (const t of file.tables) tables[t.name] = t;
    for (const spec of model.tableSpecs()) if (tables[spec.name] === undefined) throw new RecommendError(`${paramsPath} has no table '${spec.name}' that ${config.model} needs`);
    log(`loading ${config.dataset.source} (split ${config.dataset.split}, seed ${config.dataset.seed}) for ids and histories …`);
    const ds = await loadJobDataset(config.dataset, log);
    const rec = new Recommender(model, { tables, dense: { ...file.dense } }, groupRows(ds.train, 'user'), ds.numItems, {
      ...(ds.users !== undefined ? { users: ds.users } : {}),
      ...(ds.items !== undefined ? { items: ds.items } : {}),
    });
    if ((model.task ?? 'rating') === 'rating') rec.ratingRange = config.ratingRange ?? ds.ratingRange;
    return rec;
  }

  static async #openKnn(dir: string, config: SavedConfig, log: (line: string) => void): Promise<Recommender> {
    const path = join(dir, 'neighbours.bin');
    if (!existsSync(path)) throw new RecommendError(`${path} not found: the kNN job did not finish; re-run it`);
    const spec = config.dataset as NonNullable<SavedConfig['dataset']>;
    log(`loading ${spec.source} (split ${spec.split}, seed ${spec.seed}) for ids, histories and the kNN statistics …`);
    const ds = await loadJobDataset(spec, log);
    const settings = knnSettings(config.hyper as KnnHyper);
    const neighbours = readNeighbours(path);
    const model = new KnnModel(prepareKnn(ds.train, { numUsers: ds.numUsers, numItems: ds.numItems }), settings.options, neighbours);
    return new Recommender({ model, neighbours, itemBased: settings.options.kind === 'item' }, { tables: {}, dense: {} }, groupRows(ds.train, 'user'), ds.numItems, {
      ...(ds.users !== undefined ? { users: ds.users } : {}),
      ...(ds.items !== undefined ? { items: ds.items } : {}),
    });
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
    const u = this.#index(this.#users, user, 'user', Number.MAX_SAFE_INTEGER);
    const hist = rowsForIds(this.history, Int32Array.of(u));
    let scores: Float32Array;
    if (this.knn !== undefined) {
      // Item-based: the sum of similarities to the user's items (Deshpande & Karypis); user-based: predicted ratings.
      scores = this.knn.model.scoreItems({ items: hist.items, values: hist.values }, this.knn.itemBased ? { mode: 'sum' } : { user: u, mode: 'rating' });
    } else {
      const m = this.model as TrainableModel<unknown>;
      if (m.scoreItems === undefined || m.rowsForScoring === undefined) throw new RecommendError(`${m.name} cannot rank items (it has no scoreItems)`);
      scores = m.scoreItems(engine.tf, hist, gather(this.params, m.rowsForScoring(hist)));
    }
    const top = topK(scores, n, hist.items);
    // Ranked on the raw scores (clipping would tie the top ones); shown clipped to the rating scale.
    const shown =
      this.knn === undefined
        ? clipToRange(
            Float32Array.from(top, (i) => scores[i]),
            this.ratingRange,
          )
        : Float32Array.from(top, (i) => scores[i]);
    return Array.from(top, (i, k) => ({ id: this.#itemId(i), index: i, score: shown[k] }));
  }

  /**
   * The `n` items nearest to `item` by cosine similarity of their embedding rows — the item table
   * of the model (the first table with one row per item and more than one column, preferring one
   * whose name says item).
   */
  similar(item: string, n: number): Scored[] {
    const i = this.#index(this.#items, item, 'item', this.numItems);
    if (this.knn !== undefined) {
      if (!this.knn.itemBased) throw new RecommendError('a user-based kNN model has no item neighbours; train with --hyper kind=item');
      const nb = this.knn.neighbours;
      const out: Scored[] = [];
      for (let e = nb.offsets[i]; e < nb.offsets[i + 1] && out.length < n; e++) out.push({ id: this.#itemId(nb.neighbors[e]), index: nb.neighbors[e], score: nb.sims[e] });
      return out;
    }
    const candidates = Object.values(this.params.tables).filter((t) => t.rows === this.numItems && t.dim > 1);
    const table = candidates.find((t) => /item/i.test(t.name)) ?? candidates[0];
    if (table === undefined) throw new RecommendError(`${this.name} has no item embedding table to compare items with`);
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
