// Public API of @actorflow/protocol: Wire protocol: subjects, message types, msgpack and Arrow IPC codecs, chunking.
export {};
