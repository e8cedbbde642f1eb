// Wires train.loss and train.eval into the monitor state. Messages of other jobs are skipped by
// their Job-Id header before decoding when a job is chosen; anything that is not a valid report
// is counted as rejected (and never stops the monitor). Heartbeats (`<job>.hb.<actor>`, or
// `<job>.hb.*` with a job chosen) keep each job's live/stopped status, and the connection's own
// status events (nc.status()) tell the views when the monitor itself is cut off.
import type { NatsConnection, Msg, Subscription } from '@actorflow/bus';
import { evalReportCodec, heartbeatCodec, lossReportCodec, subjects } from '@actorflow/protocol';
import type { MonitorState } from './state.ts';

export interface ReportSubscriptions {
  readonly subscriptions: readonly Subscription[];
  stop(): void;
}

/** The Job-Id header of a message, if it has one. */
export function jobIdHeader(m: Pick<Msg, 'headers'>): string | undefined {
  const v = m.headers?.get('Job-Id');
  return v === undefined || v === '' ? undefined : v;
}

/** Handles one message of `subject` (exposed for tests without a server). */
export function handleReport(state: MonitorState, subject: string, m: Pick<Msg, 'headers' | 'data'>): void {
  const headerJob = jobIdHeader(m);
  if (headerJob !== undefined && !state.accepts(headerJob)) return;
  try {
    if (subject === subjects.eval) state.onEval(evalReportCodec.decode(m.data));
    else state.onLoss(lossReportCodec.decode(m.data));
  } catch (err) {
    state.reject(`${subject}: ${(err as Error).message}`);
  }
}

/** Handles one heartbeat message (exposed for tests without a server). */
export function handleHeartbeat(state: MonitorState, subject: string, data: Uint8Array): void {
  try {
    state.onHeartbeat(heartbeatCodec.decode(data));
  } catch (err) {
    state.reject(`${subject}: ${(err as Error).message}`);
  }
}

/** The heartbeat subscription's subject: every job's, or one job's. */
export function heartbeatSubject(job: string | undefined): string {
  if (job === undefined) return '*.hb.*';
  try {
    return subjects.heartbeat(job, 'any').replace(/any$/, '*'); // the job id is a subject token
  } catch {
    return '*.hb.*'; // not a token: no actor can beat for it, the state's filter drops the rest
  }
}

export function subscribeReports(nc: NatsConnection, state: MonitorState): ReportSubscriptions {
  const subscriptions = [subjects.loss, subjects.eval].map((subject) =>
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err === null) handleReport(state, subject, m);
      },
    }),
  );
  subscriptions.push(
    nc.subscribe(heartbeatSubject(state.filter), {
      callback: (err, m) => {
        if (err === null) handleHeartbeat(state, m.subject, m.data);
      },
    }),
  );
  const stopSweeping = state.watchLiveness();
  const stopFollowing = followConnection(nc, state);
  return {
    subscriptions,
    stop: () => {
      stopSweeping();
      stopFollowing();
      subscriptions.forEach((s) => s.unsubscribe());
    },
  };
}

/** Mirrors the connection's status events into `state.connection` until stopped or closed. */
export function followConnection(nc: NatsConnection, state: MonitorState): () => void {
  let stopped = false;
  state.setConnection(nc.isClosed() ? 'closed' : nc.info === undefined ? 'reconnecting' : 'connected');
  void (async () => {
    for await (const s of nc.status()) {
      if (stopped) return;
      if (s.type === 'disconnect' || s.type === 'reconnecting') state.setConnection('reconnecting');
      else if (s.type === 'reconnect') state.setConnection('connected');
      else if (s.type === 'close') break;
    }
  })()
    .catch(() => undefined)
    .finally(() => {
      if (!stopped && nc.isClosed()) state.setConnection('closed');
    });
  void nc.closed().then(() => {
    if (!stopped) state.setConnection('closed');
  });
  return () => {
    stopped = true;
  };
}
