// Public API of @actorflow/metrics: Rating and ranking metrics.
export {};
