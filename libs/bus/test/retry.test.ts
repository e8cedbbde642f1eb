// retrying(): what is retried, the attempt timeout, the deadline error, the env deadline.
// (Broker restarts against a real nats-server: outage.test.ts.)
import t from 'tap';
import { errors as natsErrors } from '@nats-io/nats-core';
import {
  BusError,
  BusTimeoutError,
  ConnectionClosedError,
  ConnectionLostError,
  NoRespondersBusError,
  RemoteError,
  RetryDeadlineError,
  isRetryable,
  retryDeadlineMs,
  retrying,
  DEFAULT_RETRY_DEADLINE_MS,
} from '../mod.ts';

const fast = { backoff: { initialMs: 1, maxMs: 5, factor: 2, jitter: 0.5 } };

t.test('what is retryable', async (t) => {
  t.ok(isRetryable(new BusTimeoutError('s', 1)), 'our timeout');
  t.ok(isRetryable(new NoRespondersBusError('s')), 'no responders');
  t.ok(isRetryable(new ConnectionLostError('s', 'disconnect')), 'a dropped connection');
  t.ok(isRetryable(new natsErrors.TimeoutError()), "nats.js's timeout");
  t.ok(isRetryable(new natsErrors.RequestError('no responders', { cause: new natsErrors.NoRespondersError('s') })), "nats.js's no responders (RequestError with its cause)");
  t.ok(isRetryable(new natsErrors.RequestError('connection disconnected')), "nats.js's disconnected request");
  t.ok(isRetryable(new natsErrors.ConnectionError('refused')), "nats.js's connection error");
  t.notOk(isRetryable(new RemoteError('s', 'BAD_VERSION', 'x')), 'a remote error is an answer');
  t.ok(isRetryable(new RemoteError('s', 'BUSY', 'x'), ['BUSY']), 'unless its code is listed');
  t.notOk(isRetryable(new ConnectionClosedError('s')), 'a closed connection');
  t.notOk(isRetryable(new natsErrors.ClosedConnectionError()), "nats.js's closed connection");
  t.notOk(isRetryable(new TypeError('bug')), 'a bug');
});

t.test('retries retryable failures with backoff, then succeeds; tells onRetry each time', async (t) => {
  const seen: string[] = [];
  let n = 0;
  const out = await retrying(
    async ({ attempt }) => {
      n++;
      if (attempt < 3) throw new NoRespondersBusError('svc');
      return 'done';
    },
    { ...fast, what: 'svc', onRetry: (a, e) => seen.push(`${a}:${e.name}`) },
  );
  t.equal(out, 'done');
  t.equal(n, 3);
  t.same(seen, ['1:NoRespondersBusError', '2:NoRespondersBusError']);
});

t.test('a non-retryable error passes through at once', async (t) => {
  let n = 0;
  const boom = new RemoteError('svc', 'NOPE', 'no');
  await t.rejects(
    retrying(async () => {
      n++;
      throw boom;
    }, fast),
    boom,
  );
  t.equal(n, 1);
});

t.test('an attempt over its timeout is abandoned (its signal aborted) and retried', async (t) => {
  const aborted: unknown[] = [];
  const out = await retrying(
    ({ attempt, signal }) =>
      new Promise<number>((resolve) => {
        signal.addEventListener('abort', () => aborted.push(signal.reason));
        if (attempt === 2) resolve(attempt); // the first attempt never answers
      }),
    { ...fast, attemptTimeoutMs: 50, what: 'slow' },
  );
  t.equal(out, 2);
  t.ok(aborted[0] instanceof BusTimeoutError, 'the first attempt was aborted with a timeout');
});

t.test('the deadline: RetryDeadlineError with what, attempts, time and the last error', async (t) => {
  const err = await retrying(
    async () => {
      throw new BusTimeoutError('job.ps.0.pull', 10);
    },
    { ...fast, what: 'job.ps.0.pull', deadlineMs: 200 },
  ).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof RetryDeadlineError);
  const e = err as RetryDeadlineError;
  t.ok(e.attempts > 1, `${e.attempts} attempts`);
  t.ok(e.lastError instanceof BusTimeoutError);
  t.equal(e.cause, e.lastError);
  t.match(e.message, /^job\.ps\.0\.pull: no answer after \d+ attempt\(s\) over \d+\.\d s .*last error: no reply on job\.ps\.0\.pull/);
});

t.test('an absolute deadline already passed: no attempt', async (t) => {
  let n = 0;
  await t.rejects(
    retrying(
      async () => {
        n++;
        return 1;
      },
      { deadline: Date.now() - 1, what: 'late' },
    ),
    RetryDeadlineError,
  );
  t.equal(n, 0);
});

t.test('ACTORFLOW_RETRY_DEADLINE_S', async (t) => {
  t.equal(retryDeadlineMs({}), DEFAULT_RETRY_DEADLINE_MS);
  t.equal(DEFAULT_RETRY_DEADLINE_MS, 120_000);
  t.equal(retryDeadlineMs({ ACTORFLOW_RETRY_DEADLINE_S: '45' }), 45_000);
  t.equal(retryDeadlineMs({ ACTORFLOW_RETRY_DEADLINE_S: '0.5' }), 500);
  t.throws(() => retryDeadlineMs({ ACTORFLOW_RETRY_DEADLINE_S: 'soon' }), BusError);
  t.throws(() => retryDeadlineMs({ ACTORFLOW_RETRY_DEADLINE_S: '-3' }), /positive number of seconds, got '-3'/);
});
