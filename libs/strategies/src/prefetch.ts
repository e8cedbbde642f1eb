// Pipelined steps: ask for the next batch before computing on the current one, so the data
// shard's work and the network round trip overlap the step's compute (a step is synchronous
// JavaScript; the request is already on the wire when it starts, and its reply is read after).
// Only batches are prefetched, never parameters: a ps pull for the next step made before this
// step's push would read rows one update staler, and ps with one trainer must equal the single process.

/** Yields what `source` yields, with up to `depth` next items already requested. */
export async function* prefetch<T>(source: AsyncIterable<T> | Iterable<T>, depth = 1): AsyncGenerator<T> {
  if (!(Symbol.asyncIterator in source)) {
    yield* source as Iterable<T>;
    return;
  }
  const it = (source as AsyncIterable<T>)[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  const ask = (): void => {
    const p = it.next();
    // A prefetched request that fails after the consumer stopped must not be an unhandled rejection;
    // a consumer that awaits it still sees the error.
    p.catch(() => undefined);
    queue.push(p);
  };
  let finished = false;
  try {
    for (let k = 0; k <= depth; k++) ask();
    for (;;) {
      const r = await (queue.shift() as Promise<IteratorResult<T>>);
      if (r.done === true) {
        finished = true;
        return;
      }
      ask();
      yield r.value;
    }
  } finally {
    // Stopped early (break, an error in the step): let the source clean up (its own finally blocks).
    if (!finished) await it.return?.();
  }
}
