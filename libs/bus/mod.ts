// Public API of @actorflow/bus: NATS connection options, request helpers, chunked transport and a real nats-server harness.
export {};
