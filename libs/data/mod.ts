// Public API of @actorflow/data: Dataset loaders, id encoding, splits, synthetic generators, Arrow files, sharding, epoch iteration.
export {};
