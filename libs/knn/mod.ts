// Public API of @actorflow/knn: neighbourhood (kNN) recommenders, user- and item-based, with
// similarities computed in blocks that separate workers can compute and merge.
export { KnnError } from './src/errors.ts';
export { buildCsr, csrGet, rowStats, type Csr } from './src/csr.ts';
export {
  prepareKnn,
  pairSimilarity,
  planBlocks,
  blockCosts,
  computeBlock,
  mergeBlocks,
  type KnnData,
  type KnnKind,
  type SimilarityKind,
  type SimilarityOptions,
  type Block,
  type SimilarityBlock,
  type Neighbours,
} from './src/similarity.ts';
export {
  KnnModel,
  type KnnOptions,
  type Normalize,
  type FitOptions,
  type ScoreMode,
  type ScoreOptions,
  type SweepPoint,
} from './src/model.ts';
