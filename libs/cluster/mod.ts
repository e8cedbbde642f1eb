// Public API of @actorflow/cluster: the machine blueprint, selection policies, the placement planner
// (ShardingPlan) and its table, the node agent (on the bus), its client, and calibration (its bus messages are in @actorflow/protocol, src/cluster.ts).
export { BlueprintError, SelectionError, PlanError, NodeAgentError } from './src/errors.ts';
export { parseBlueprint, loadBlueprint, machineNameOf, blueprintFormatOf, type Blueprint, type BlueprintFormat, type Machine } from './src/blueprint.ts';
export { selectMachines, parseSelectionPolicy, gpuCount, SELECTION_POLICIES, type SelectionPolicy, type Selectable } from './src/select.ts';
export {
  planJob,
  stepBytesOneWay,
  computeMs,
  formatBytes,
  CALIBRATION_DIM,
  DEFAULT_CALIBRATION,
  DEFAULT_REQUEST_MS,
  cpuShare,
  psRequestsPerStep,
  mirroredRequestsPerStep,
  PROCESS_BASE_BYTES,
  MEMORY_HEADROOM,
  type Strategy,
  type RequestedStrategy,
  type Calibration,
  type NodeCapacity,
  type ModelCost,
  type DatasetCost,
  type PlanInput,
  type PlacedRole,
  type Placement,
  type MachineLoad,
  type Prediction,
  type ShardingPlan,
} from './src/planner.ts';
export { modelCost, modelFlagSizing, type ModelCostOptions, type ModelFlagSizing } from './src/model-cost.ts';
export { renderPlan } from './src/render.ts';
export { ActorProcesses, resolveEntry, type ActorProcessesOptions } from './src/processes.ts';
export { calibrate, sparseKernelRate, matmulRate, detectGpus, parseNvidiaSmi, hostFacts, type Calibrated } from './src/calibrate.ts';
export { NodeAgent, measureLink, measureRequest, FETCH_FILES_ENV, type NodeAgentOptions } from './src/agent.ts';
export { nodeInfo, startActor, stopActors, listActors, renewLease, discoverNodes, capacityOfInfo, capacityOfMachine, ASSUMED_MEMORY_GIB, type NodeRequestOptions } from './src/client.ts';
