// Public API of @actorflow/data: loaders, id encoding, splits, synthetic data, MNIST, Arrow files, sharding, epochs.
export type { Ratings, RatingsBatch, InteractionsBatch, ImageBatch, HeldOut } from './src/types.ts';
export { DataError, ParseError, FormatError } from './src/errors.ts';
export { Rng, deriveSeed, hash32 } from './src/random.ts';
export { RatingsBuilder, selectRows, groupByUser, countIds } from './src/columns.ts';
export { IdMap, type RawId } from './src/encoding.ts';
export { loadRatings, detectFormat, type RatingsFormat, type ColumnMapping, type LoadOptions, type LoadProgress, type LoadedRatings } from './src/loaders.ts';
export { resolveUserPath, userCwd } from './src/paths.ts';
export { toImplicit, filterMinCounts, type ImplicitOptions, type MinCountOptions, type Filtered } from './src/transform.ts';
export { describe, formatSummary, type RatingsSummary } from './src/describe.ts';
export {
  randomSplit,
  fixedSizeSplit,
  perUserHoldout,
  perUserFractionSplit,
  leaveOneOut,
  strongGeneralization,
  kFoldSplit,
  carveValidation,
  splitBySpec,
  parseSplitSpec,
  type SplitSpec,
  type Split,
  type StrongSplit,
} from './src/splits.ts';
export { lowRankRatings, syntheticRatings, implicitClicks, writeRatingsCsv, SYNTHETIC_SIZES, type LowRankOptions, type SyntheticRatings, type SyntheticSize } from './src/synthetic.ts';
export { loadIdx, parseIdx, encodeIdx, loadBundledDigits, MNIST_PIXELS, type ImageSet } from './src/mnist.ts';
export { saveRatingsArrow, loadRatingsArrow, type RatingsFile } from './src/arrow-files.ts';
export { shardOf, shardByUser, shardByRow, takeShard } from './src/sharding.ts';
export { lowerBound, sortedIndexOf, type SortedNumbers } from './src/search.ts';
export { EpochIterator, takeBatch, type EpochOptions } from './src/epochs.ts';
export {
  EXAMPLE_KINDS,
  exampleCount,
  batchLength,
  takeExamples,
  takeImages,
  takeRows,
  groupRows,
  rowsForIds,
  exampleSet,
  shardExamples,
  type ExampleKind,
  type ExampleSet,
  type AnyBatch,
} from './src/examples.ts';
