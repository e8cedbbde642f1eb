// Public API of @actorflow/embeddings: tables as typed-array rows, sparse gradients, row-wise optimizers, save/load.
export {
  createTable,
  initRow,
  gatherRows,
  scatterRows,
  dedupeSparseGradient,
  addSparse,
  sumSparseInOrder,
  EmbeddingError,
  type EmbeddingTable,
  type Initializer,
  type SparseGradient,
} from './src/table.ts';
export { biasedDotMse, biasedDotPredict, rowPositions, sortedIndexOf, type BiasedDotInputs, type BiasedDotGradients } from './src/interactions.ts';
export { bagForward, bagBackward, type BagMode, type GatheredRows } from './src/bag.ts';
export { RowOptimizer, type OptimizerConfig, type OptimizerName } from './src/optimizers.ts';
export { saveParams, loadParams, type ParamsFile } from './src/io.ts';
