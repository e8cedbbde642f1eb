// Wires train.loss and train.eval into the monitor state. Messages of other jobs are skipped by
// their Job-Id header before decoding when a job is chosen; anything that is not a valid report
// is counted as rejected (and never stops the monitor).
import type { NatsConnection, Msg, Subscription } from '@actorflow/bus';
import { evalReportCodec, lossReportCodec, subjects } from '@actorflow/protocol';
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

export function subscribeReports(nc: NatsConnection, state: MonitorState): ReportSubscriptions {
  const subscriptions = [subjects.loss, subjects.eval].map((subject) =>
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err === null) handleReport(state, subject, m);
      },
    }),
  );
  return {
    subscriptions,
    stop: () => subscriptions.forEach((s) => s.unsubscribe()),
  };
}
