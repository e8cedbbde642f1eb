// Errors of the wire protocol. Every decoder throws one of these (never a TypeError from deep
// inside a parser), so callers can tell bad bytes from bugs.

export class ProtocolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProtocolError';
  }
}

/** Bytes that are not a valid encoding of the expected message kind. */
export class DecodeError extends ProtocolError {
  constructor(
    readonly kind: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot decode ${kind}: ${reason}`, options);
    this.name = 'DecodeError';
  }
}

/** A chunked message that cannot be reassembled: missing, corrupt, inconsistent or over the memory bound. */
export class ChunkError extends ProtocolError {
  constructor(
    readonly messageId: string,
    reason: string,
  ) {
    super(`chunked message ${messageId}: ${reason}`);
    this.name = 'ChunkError';
  }
}
