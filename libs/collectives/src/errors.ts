// The typed errors of @actorflow/collectives.

export class CollectiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CollectiveError';
  }
}

/** A rank stayed silent past the timeout; the message names it, the operation and its sequence. */
export class CollectiveTimeoutError extends CollectiveError {
  constructor(
    readonly missing: readonly number[],
    readonly op: string,
    readonly seq: number,
    timeoutMs: number,
  ) {
    super(`${op} #${seq}: rank(s) ${missing.join(', ')} sent nothing within ${timeoutMs} ms (crashed, stuck or never started?)`);
    this.name = 'CollectiveTimeoutError';
  }
}

export class RendezvousError extends CollectiveError {
  constructor(message: string) {
    super(message);
    this.name = 'RendezvousError';
  }
}

/** A store request that failed (the store is unreachable past the deadline, or answered an error). */
export class StoreError extends CollectiveError {
  constructor(message: string, options?: ErrorOptions) {
    super(message);
    this.name = 'StoreError';
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
