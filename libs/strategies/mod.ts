// Public API of @actorflow/strategies: the single-process reference, the asynchronous parameter server, and shared parameter plumbing.
export { trainLocal, evaluate, type LocalOptions, type LocalResult, type StepReport } from './src/local.ts';
export { initParams, gather, applyStep, createOptimizer, type ParamStore } from './src/params.ts';
export {
  ParameterShard,
  servePsShard,
  mergeSnapshots,
  ownerOfRow,
  ownerOfDense,
  parseStaleness,
  psStatsSubject,
  PushRejected,
  ShardStateError,
  PUSH_ID_MEMORY,
  type PushRejectReason,
  type ShardStats,
  type ParameterShardOptions,
  type StalenessPolicy,
} from './src/ps.ts';
export { JOB_MAX_PAYLOAD, PsClient, type PsClientOptions, type PsClientCounters } from './src/ps-client.ts';
export { DivergenceError, assertFiniteStep, firstNonFinite, nonFiniteParam } from './src/guards.ts';
export { runPsTrainer, type TrainerStep } from './src/ps-trainer.ts';
export { runMirroredTrainer, broadcastParams, storeToSnapshot, loadTrainerState, TrainerStateError, type MirroredStep, type FedExamples } from './src/mirrored.ts';
export { evaluateModel, clipToRange, withColdStart, evaluateRanking, popularityRanking, withHistory, headlineMetric, type EvalData, type EvalProgress, type Metrics } from './src/evaluate.ts';
