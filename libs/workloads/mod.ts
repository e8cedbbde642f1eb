// Public API of @actorflow/workloads: what each role does for a model, looked up by the model's
// name — the apps are flags → wiring → workloadFor(model).<role>. Gradient models (every model of
// @actorflow/models) share one workload; kNN registers its own.
import { gradientWorkload } from './src/gradient.ts';
import { knnWorkload } from './src/knn.ts';
import { registerWorkload } from './src/workload.ts';

registerWorkload(gradientWorkload);
registerWorkload(knnWorkload);

export {
  registerWorkload,
  workloadFor,
  listModels,
  UnknownWorkloadError,
  type Workload,
  type FlagValues,
  type ModelListing,
  type LaunchInfo,
  type AggregatorRole,
  type ServedAggregator,
  type TrainerOptions,
  type EvaluatorOptions,
  type ServedEvaluator,
  type SaveExtra,
  type OpenedModel,
} from './src/workload.ts';
export { gradientWorkload, openedGradientModel, ModelOpenError } from './src/gradient.ts';
export { knnWorkload } from './src/knn.ts';
export { parseHyper } from './src/gradient-aggregator.ts';
export { jobSnapshots, writeGradientModel, saveGradientModel, appendEvalHistory, writeMetricsJson, ModelNotSavedError } from './src/save.ts';
export {
  supervised,
  trainersDone,
  finishByHand,
  announceEnd,
  onJobEnd,
  exitActor,
  ThroughputMeter,
  JobProgress,
  watchJobProgress,
  plannedJobSteps,
  formatDuration,
  type TrainersDone,
  type FinishOptions,
  type ByHandResult,
  type JobMetrics,
  type JobFaults,
  type Throughput,
  type SpeedSample,
} from './src/job-end.ts';
export { mintJobId, liveJobs, discoverJob, JobDiscoveryError } from './src/job-id.ts';
