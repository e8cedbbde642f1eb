// Public API of @actorflow/embeddings: Embedding tables as Float32Array rows with row-wise (sparse) optimizers.
export {};
