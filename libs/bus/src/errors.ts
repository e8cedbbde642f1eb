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
