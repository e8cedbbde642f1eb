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
export { KnnModel, type KnnOptions, type Normalize, type FitOptions, type ScoreMode, type ScoreOptions, type SweepPoint } from './src/model.ts';
export {
  knnPlan,
  blocksOfRank,
  runKnnWorker,
  sendKnnBlock,
  collectKnnBlocks,
  fetchNeighbours,
  type KnnWorkerOptions,
  type KnnWorkerResult,
  type KnnBlockProgress,
  type CollectOptions,
  type KnnCollector,
} from './src/distributed.ts';
export { knnSubjects, knnBlockCodec, knnBlockAckCodec, neighboursCodec, KNN_NOT_READY, KNN_FOREIGN_BLOCK, type KnnBlockMessage, type KnnBlockAck, type NeighboursMessage } from './src/messages.ts';
export {
  KNN_MODEL,
  KNN_DEFAULTS,
  KNN_SWEEP,
  KNN_LAUNCH,
  parseKnnHyper,
  knnSettings,
  plannedBlocks,
  ratingsFromRows,
  loadKnnData,
  knnAggregatorFlags,
  serveKnnAggregator,
  runKnnTrainer,
  knnMetrics,
  serveKnnEvaluator,
  saveKnnModel,
  readNeighbours,
  type KnnHyper,
  type KnnSettings,
  type KnnJobConfig,
  type KnnConfigView,
  type KnnDataSource,
  type KnnAggregatorFlags,
  type KnnAggregator,
  type KnnTrainerOptions,
  type KnnEvaluator,
} from './src/job.ts';
