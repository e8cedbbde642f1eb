// Public API of @actorflow/models: Model registry and models (biased MF first).
export {};
