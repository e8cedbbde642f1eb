// Errors of @actorflow/data. Parse errors carry file and line so a user can open the file there.

export class DataError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DataError';
  }
}

/** A malformed line: where it is and what is wrong with it. */
export class ParseError extends DataError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'ParseError';
  }
}

/** A file whose format is unknown or not what was asked for. */
export class FormatError extends DataError {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}
