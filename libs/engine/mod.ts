// Public API of @actorflow/engine: TF.js backend selection (tensorflow -> wasm -> cpu).
export {};
