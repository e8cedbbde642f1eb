// Public API of @actorflow/metrics: rating metrics, ranking metrics (full ranking with seen items
// excluded, and the sampled-candidates protocol of NCF), top-K selection.
export { mse, rmse, mae, RegressionAccumulator, MetricsError } from './src/regression.ts';
export { topK, rankOf, type Scores } from './src/topk.ts';
export {
  hitsAt,
  precisionAt,
  recallAt,
  hitRateAt,
  averagePrecisionAt,
  reciprocalRankAt,
  ndcgAt,
  catalogueCoverage,
  relevantCount,
  type Relevance,
  type Gain,
  type NdcgOptions,
} from './src/ranking.ts';
export { RankingAccumulator, DEFAULT_KS, type RankingAccumulatorOptions, type RankingResult, type CsrRows } from './src/accumulator.ts';
export { sampleNegatives, sampledCandidates, sampledRanking, SampledRankingAccumulator, type NegativeOptions, type SampledResult, type SampledAccumulatorOptions } from './src/sampled.ts';
