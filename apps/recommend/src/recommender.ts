// A trained model (out/<job>/model: params.bin + config.json) turned into answers on the dataset's
// own ids: the top-N items for a user, without what the user already rated, and the items most
// similar to an item. The dataset is loaded again from the spec saved with the model (same source,
// split and seed → the same id encoding and training histories), so no id map has to be kept in sync.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '@actorflow/engine';
import { rowsForIds, type IdMap, type InteractionsBatch, groupRows } from '@actorflow/data';
import { loadJobDataset, type DatasetSpec, type JobConfig } from '@actorflow/feed';
import { topK } from '@actorflow/metrics';
import type { TrainableModel } from '@actorflow/models';
import { clipToRange, type ParamStore } from '@actorflow/strategies';
import { ModelOpenError, openedGradientModel, workloadFor, type OpenedModel } from '@actorflow/workloads';

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

export class Recommender {
  /** The model's name (as trained). */
  readonly name: string;
  /** The trained model as its workload opened it (libs/workloads): scores and neighbours. */
  readonly opened: OpenedModel;
  readonly history: InteractionsBatch;
  readonly numItems: number;
  /** Rating models: predicted ratings are shown clipped to this (the training data's range). */
  ratingRange: readonly [number, number] | undefined;
  readonly #users: IdMap | undefined;
  readonly #items: IdMap | undefined;

  private constructor(opened: OpenedModel, history: InteractionsBatch, numItems: number, ids: { users?: IdMap; items?: IdMap }) {
    this.opened = opened;
    this.name = opened.name;
    this.history = history;
    this.numItems = numItems;
    this.#users = ids.users;
    this.#items = ids.items;
    this.ratingRange = opened.ratingRange;
  }

  /** How `similar` compares items (for a header line). */
  get similarity(): string {
    return this.opened.similarity;
  }

  /** Loads the model directory a job wrote (config.json and the model's files) and the dataset named in the config. */
  static async open(dir: string, log: (line: string) => void = () => undefined): Promise<Recommender> {
    const configPath = join(dir, 'config.json');
    if (!existsSync(configPath)) throw new RecommendError(`${configPath} not found: pass --model-dir the model directory of a finished job (out/<job>/model)`);
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as SavedConfig;
    if (config.dataset === undefined) throw new RecommendError(`${configPath} does not name its dataset (written by an older launcher); re-run the job`);
    try {
      const workload = workloadFor(config.model);
      // Checked before the dataset loads: a missing or wrong file fails fast.
      workload.checkModel(dir, config);
      log(`loading ${config.dataset.source} (split ${config.dataset.split}, seed ${config.dataset.seed}) for ids and histories …`);
      const ds = await loadJobDataset(config.dataset, log);
      const opened = workload.openModel(dir, config, ds, config.ratingRange);
      return new Recommender(opened, groupRows(ds.train, 'user'), ds.numItems, {
        ...(ds.users !== undefined ? { users: ds.users } : {}),
        ...(ds.items !== undefined ? { items: ds.items } : {}),
      });
    } catch (err) {
      throw err instanceof ModelOpenError ? new RecommendError(err.message) : err;
    }
  }

  /** Builds one from parts (tests, notebooks). */
  static fromParts(model: TrainableModel<unknown>, params: ParamStore, history: InteractionsBatch, numItems: number, ids: { users?: IdMap; items?: IdMap } = {}): Recommender {
    return new Recommender(openedGradientModel(model, params, numItems), history, numItems, ids);
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
    const scores = this.#wrap(() => this.opened.scoreItems(engine, u, hist));
    const top = topK(scores, n, hist.items);
    // Ranked on the raw scores (clipping would tie the top ones); shown clipped to the rating scale.
    const raw = Float32Array.from(top, (i) => scores[i]);
    const shown = this.opened.clipsScores ? clipToRange(raw, this.ratingRange) : raw;
    return Array.from(top, (i, k) => ({ id: this.#itemId(i), index: i, score: shown[k] }));
  }

  /** The `n` items nearest to `item` (kNN: its neighbour list; embedding models: cosine of their item rows). */
  similar(item: string, n: number): Scored[] {
    const i = this.#index(this.#items, item, 'item', this.numItems);
    return this.#wrap(() => this.opened.similar(i, n, this.numItems)).map((x) => ({ id: this.#itemId(x.index), index: x.index, score: x.score }));
  }

  #wrap<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      throw err instanceof ModelOpenError ? new RecommendError(err.message) : err;
    }
  }
}
