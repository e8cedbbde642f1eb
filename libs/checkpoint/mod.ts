// Public API of @actorflow/checkpoint: job checkpoints on disk — `<root>/<step, 12 digits>/` holding
// parts written atomically and a checksummed MANIFEST.json written last; a checkpoint exists only
// once its manifest lists every part.
export {
  writeCheckpoint,
  writePartAtomic,
  commitManifest,
  describePart,
  latestCheckpoint,
  listCheckpoints,
  openCheckpoint,
  pruneCheckpoints,
  discardCheckpointsAfter,
  checkpointDir,
  stepDirName,
  validatePartName,
  CheckpointError,
  CHECKPOINT_FORMAT,
  MANIFEST_NAME,
  type Checkpoint,
  type CheckpointListing,
  type Manifest,
  type ManifestPart,
  type WriteCheckpointOptions,
  type ListOptions,
} from './src/checkpoint.ts';
