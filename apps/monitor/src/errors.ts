// Errors of the monitor app.

export class MonitorError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MonitorError';
  }
}

/** The web page's HTTP server could not listen (port taken, no permission, bad host). */
export class WebServerError extends MonitorError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebServerError';
  }
}
