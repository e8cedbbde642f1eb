// Public API of @actorflow/engine: TF.js backend selection.
export { selectBackend, availableBackends, BackendUnavailableError, BACKENDS, type BackendName, type Engine, type Tf } from './src/backend.ts';
export { readTidy } from './src/read.ts';
