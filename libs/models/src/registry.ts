// Models are declared in one place: a registry of factories with their hyper-parameter
// defaults. Adding a model is one new file that calls registerModel.
import type { OptimizerConfig } from '@actorflow/embeddings';
import { ModelError, type InputKind, type TrainableModel } from './model.ts';

export type Hyper = Readonly<Record<string, number | string | boolean>>;

export interface ModelEntry {
  readonly name: string;
  readonly description: string;
  readonly defaults: Hyper;
  readonly create: (hyper: Hyper) => TrainableModel<unknown>;
  /** The model's input kind (default 'ratings'), known before a model is built: the launcher picks a default dataset by it. */
  readonly input?: InputKind;
  /** Training settings that work for this model (the aggregator's and launcher's defaults for it). */
  readonly recommended?: { readonly optimizer?: OptimizerConfig; readonly batchSize?: number; readonly epochs?: number; readonly earlyStop?: RecommendedEarlyStop };
}

/**
 * Early stopping a job runs with when it is given none of --epochs, --validation, --early-stop
 * (apps/job): `validation` of the training ratings carved into a validation set, stop after
 * `patience` epochs without improvement, at most `maxEpochs` epochs. For gradient rating models
 * of ratings only (what the launcher's early stopper scores); `epochs` stays what --early-stop 0 runs.
 */
export interface RecommendedEarlyStop {
  readonly validation: number;
  readonly patience: number;
  readonly maxEpochs: number;
}

/** Hyper-parameters the data decides (filled in by the aggregator when the model takes them). */
export const DATA_HYPER = ['numUsers', 'numItems', 'globalMean', 'numClasses'] as const;

export type DataFacts = Readonly<Record<(typeof DATA_HYPER)[number], number>>;

/** The data-decided hyper-parameters this model takes (of `facts`), then `hyper` on top. */
export function withDataHyper(name: string, facts: DataFacts, hyper: Hyper = {}): Hyper {
  const defaults = modelEntry(name).defaults;
  return { ...Object.fromEntries(DATA_HYPER.filter((k) => k in defaults).map((k) => [k, facts[k]])), ...hyper };
}

/** A model's own hyper-parameters (those a user sets), without the data-decided ones. */
export function userHyper(entry: ModelEntry): Hyper {
  return Object.fromEntries(Object.entries(entry.defaults).filter(([k]) => !(DATA_HYPER as readonly string[]).includes(k)));
}

const registry = new Map<string, ModelEntry>();

export function registerModel(entry: ModelEntry): void {
  if (registry.has(entry.name)) throw new ModelError(`model '${entry.name}' is registered twice`);
  registry.set(entry.name, entry);
}

export function listModels(): ModelEntry[] {
  return [...registry.values()];
}

export function modelEntry(name: string): ModelEntry {
  const entry = registry.get(name);
  if (entry === undefined) throw new ModelError(`unknown model '${name}'; available: ${[...registry.keys()].join(', ')}`);
  return entry;
}

/** Creates a model; unknown hyper-parameters are errors (a typo must not silently use a default). */
export function createModel(name: string, hyper: Hyper = {}): TrainableModel<unknown> {
  const entry = modelEntry(name);
  for (const k of Object.keys(hyper)) {
    if (!(k in entry.defaults)) throw new ModelError(`model '${name}' has no hyper-parameter '${k}'; it takes ${Object.keys(entry.defaults).join(', ')}`);
  }
  return entry.create({ ...entry.defaults, ...hyper });
}
