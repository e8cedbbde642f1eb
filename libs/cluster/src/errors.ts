// Typed errors of @actorflow/cluster: each says what is wrong, where (file and field), and what to do.

/** A blueprint file that cannot be used: names the file and the field. */
export class BlueprintError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    reason: string,
  ) {
    super(`blueprint ${file}: ${field}: ${reason}`);
    this.name = 'BlueprintError';
  }
}

/** A selection policy that is unknown or selects no machine. */
export class SelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectionError';
  }
}

/** The planner cannot place the job on the machines (memory, no machine, bad input). */
export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}

/** A node agent refused or failed a request (bad entry, duplicate actor, unknown actor). */
export class NodeAgentError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NodeAgentError';
  }
}
