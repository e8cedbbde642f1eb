// Liveness: actors publish heartbeats; a tracker names the members that went silent, so an
// error can say *which* rank stopped answering instead of just timing out.
import type { NatsConnection } from '@nats-io/nats-core';

export interface HeartbeatHandle {
  stop(): void;
}

/** Publishes `payload()` on `subject` every `intervalMs` (first beat immediately). */
export function startHeartbeat(nc: NatsConnection, subject: string, payload: () => Uint8Array, intervalMs: number): HeartbeatHandle {
  const beat = (): void => {
    // Never while the connection drains or is closed (an actor finishing): a publish then throws,
    // and a heartbeat must never be what kills an actor.
    if (nc.isClosed() || nc.isDraining()) return;
    try {
      nc.publish(subject, payload());
    } catch {
      /* the connection is going away: nothing to report to */
    }
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export class LivenessTracker<K extends string | number = string> {
  readonly #lastSeen = new Map<K, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  seen(member: K): void {
    this.#lastSeen.set(member, this.#now());
  }

  forget(member: K): void {
    this.#lastSeen.delete(member);
  }

  /** Members not seen for longer than `timeoutMs`, oldest first. */
  silent(timeoutMs: number): K[] {
    const now = this.#now();
    return [...this.#lastSeen.entries()]
      .filter(([, t]) => now - t > timeoutMs)
      .sort((a, b) => a[1] - b[1])
      .map(([k]) => k);
  }

  get members(): K[] {
    return [...this.#lastSeen.keys()];
  }
}
