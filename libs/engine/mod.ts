// Public API of @actorflow/engine: TF.js backend selection.
export { selectBackend, BackendUnavailableError, BACKENDS, type BackendName, type Engine, type Tf } from './src/backend.ts';
