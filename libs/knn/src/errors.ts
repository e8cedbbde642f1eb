// Errors of @actorflow/knn: bad options or inputs, with what was wrong and what to do instead.

export class KnnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KnnError';
  }
}
