// Models are declared in one place: a registry of factories with their hyper-parameter
// defaults. Adding a model is one new file that calls registerModel.
import { ModelError, type TrainableModel } from './model.ts';

export type Hyper = Readonly<Record<string, number | string | boolean>>;

export interface ModelEntry {
  readonly name: string;
  readonly description: string;
  readonly defaults: Hyper;
  readonly create: (hyper: Hyper) => TrainableModel<unknown>;
}

const registry = new Map<string, ModelEntry>();

export function registerModel(entry: ModelEntry): void {
  if (registry.has(entry.name)) throw new ModelError(`model '${entry.name}' is registered twice`);
  registry.set(entry.name, entry);
}

export function listModels(): ModelEntry[] {
  return [...registry.values()];
}

/** Creates a model; unknown hyper-parameters are errors (a typo must not silently use a default). */
export function createModel(name: string, hyper: Hyper = {}): TrainableModel<unknown> {
  const entry = registry.get(name);
  if (entry === undefined) throw new ModelError(`unknown model '${name}'; available: ${[...registry.keys()].join(', ')}`);
  for (const k of Object.keys(hyper)) {
    if (!(k in entry.defaults)) throw new ModelError(`model '${name}' has no hyper-parameter '${k}'; it takes ${Object.keys(entry.defaults).join(', ')}`);
  }
  return entry.create({ ...entry.defaults, ...hyper });
}
