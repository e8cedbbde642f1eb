// Public API of @actorflow/strategies: Training strategies: asynchronous parameter server (ps) and synchronous mirrored.
export {};
