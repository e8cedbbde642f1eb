// Public API of @actorflow/models: the model interface the strategies use, the registry, and the models.
export {
  ModelError,
  uniqueSorted,
  perExample,
  exampleKindOf,
  type TrainableModel,
  type TableSpec,
  type DenseSpec,
  type GatheredParams,
  type StepResult,
  type InputKind,
  type Task,
  type StepContext,
  type RatingsWithHistory,
} from './src/model.ts';
export { registerModel, createModel, listModels, modelEntry, withDataHyper, userHyper, DATA_HYPER, type DataFacts, type ModelEntry, type RecommendedEarlyStop, type Hyper } from './src/registry.ts';
export { BiasedMF, type MfOptions } from './src/mf.ts';
export { AutoRec, autoRecFromHyper, type AutoRecOptions, type OutputActivation } from './src/autorec.ts';
export { Ncf, parseLayers, type NcfOptions } from './src/ncf.ts';
export { SvdPlusPlus, type SvdppOptions } from './src/svdpp.ts';
export { MultVAE, multVaeFromHyper, multDaeFromHyper, type MultVaeOptions } from './src/vae.ts';
export { MnistCnn, MnistAutoencoder, mnistCnnFromHyper, mnistAeFromHyper, type MnistCnnOptions, type MnistAeOptions } from './src/mnist.ts';
export { NeuMf, type NeuMfOptions } from './src/neumf.ts';
