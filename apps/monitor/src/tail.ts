// `--tail`: the raw train.loss / train.eval messages as JSON lines, one per message (the `nats sub`
// replacement): `{"subject":"train.loss","job":"…",…the report's own fields}`. With a job chosen,
// other jobs' messages are skipped by their Job-Id header (or, without one, by the body's job).
import type { Msg, NatsConnection } from '@actorflow/bus';
import { subjects } from '@actorflow/protocol';
import { jobIdHeader } from './subscribe.ts';

/** The JSON line of one message, or undefined when it belongs to another job. */
export function tailLine(subject: string, m: Pick<Msg, 'headers' | 'data'>, job?: string): string | undefined {
  const headerJob = jobIdHeader(m);
  if (job !== undefined && headerJob !== undefined && headerJob !== job) return undefined;
  const text = new TextDecoder().decode(m.data);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    // Not a JSON object: still shown, as a string, so nothing on the subject is hidden.
    if (job !== undefined && headerJob === undefined) return undefined;
    return JSON.stringify({ subject, ...(headerJob !== undefined ? { job: headerJob } : {}), raw: text });
  }
  const o = body as Record<string, unknown>;
  const bodyJob = typeof o.job === 'string' ? o.job : headerJob;
  if (job !== undefined && bodyJob !== job) return undefined;
  return JSON.stringify({ subject, ...(bodyJob !== undefined ? { job: bodyJob } : {}), ...o });
}

export function tailReports(nc: NatsConnection, write: (line: string) => void, job?: string): { stop(): void } {
  const subs = [subjects.loss, subjects.eval].map((subject) =>
    nc.subscribe(subject, {
      callback: (err, m) => {
        if (err !== null) return;
        const line = tailLine(subject, m, job);
        if (line !== undefined) write(line);
      },
    }),
  );
  return { stop: () => subs.forEach((s) => s.unsubscribe()) };
}
