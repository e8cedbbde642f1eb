// Errors of the bus: connection options, the server harness, request/reply.

export class BusError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BusError';
  }
}

export class NatsServerNotInstalledError extends BusError {
  constructor(binary: string) {
    super(
      `nats-server not found (looked for '${binary}'). Install it with \`apt-get install -y nats-server\` ` +
        '(Debian/Ubuntu), or download it from the NATS releases and put it on PATH, or set NATS_SERVER_BIN to its path.',
    );
    this.name = 'NatsServerNotInstalledError';
  }
}

export class NatsServerStartError extends BusError {
  constructor(message: string) {
    super(message);
    this.name = 'NatsServerStartError';
  }
}

/** A request that got no reply in time. */
export class BusTimeoutError extends BusError {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply on ${subject} within ${timeoutMs} ms (is the service running on this job and NATS server?)`);
    this.name = 'BusTimeoutError';
  }
}

/** The remote handler failed; carries its error code and message. */
export class RemoteError extends BusError {
  constructor(
    readonly subject: string,
    readonly code: string,
    remoteMessage: string,
  ) {
    super(`${subject}: remote ${code}: ${remoteMessage}`);
    this.name = 'RemoteError';
  }
}

/** Nobody subscribes to the subject (yet, or any more: the serving actor may be restarting). */
export class NoRespondersBusError extends BusError {
  constructor(readonly subject: string) {
    super(`no service is listening on ${subject} (no responders)`);
    this.name = 'NoRespondersBusError';
  }
}

/** The connection to NATS dropped (or came back) while a request was in flight: its reply may be lost. */
export class ConnectionLostError extends BusError {
  constructor(
    readonly subject: string,
    readonly event: 'disconnect' | 'reconnect',
  ) {
    super(`${subject}: the NATS connection ${event === 'disconnect' ? 'dropped' : 'was re-established'} while the request was in flight; its reply may have been lost`);
    this.name = 'ConnectionLostError';
  }
}

/** The NATS connection is closed for good (closed by its owner, or reconnecting gave up): nothing can be retried on it. */
export class ConnectionClosedError extends BusError {
  constructor(
    readonly subject: string,
    options?: ErrorOptions,
  ) {
    super(`${subject}: the NATS connection is closed (closed by this process, or reconnecting gave up); a request on it cannot succeed — reconnect, or check --nats-no-reconnect`, options);
    this.name = 'ConnectionClosedError';
  }
}

/** A request retried until its deadline without an answer. */
export class RetryDeadlineError extends BusError {
  constructor(
    readonly subject: string,
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly lastError: Error,
  ) {
    super(
      `${subject}: no answer after ${attempts} attempt(s) over ${(elapsedMs / 1000).toFixed(1)} s (the retry deadline; raise it with ACTORFLOW_RETRY_DEADLINE_S); ` +
        `last error: ${lastError.message}. Is the serving actor running, and the NATS server reachable?`,
      { cause: lastError },
    );
    this.name = 'RetryDeadlineError';
  }
}
