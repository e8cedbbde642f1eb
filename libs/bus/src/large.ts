// Publish / subscribe / request / serve for payloads of any size. A payload that fits the
// server's max_payload goes as one message; a larger one goes as chunks (@actorflow/protocol
// chunking: numbered, CRC-checked) marked with the `Af-Chunked` header.
//
// Requests to a queue group need care: chunks published to a queue subject would be spread over
// the group's members. So a large request first asks (with a tiny `Af-Upload` request) which
// member takes it; that member answers with a private upload subject, and the chunks go there.
import { createInbox, errors as natsErrors, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { CHUNK_OVERHEAD_BYTES, ChunkAssembler, ChunkError, decodeChunk, encodeChunk, splitIntoChunks } from '@actorflow/protocol';
import { BusError, BusTimeoutError, ConnectionClosedError, NoRespondersBusError, RemoteError } from './errors.ts';

const CHUNKED = 'Af-Chunked';
const UPLOAD = 'Af-Upload';
const ERROR_CODE = 'Af-Error';
/** Room left in each message for NATS headers. */
const HEADER_ROOM = 512;

/** Last max_payload seen per connection: `nc.info` is unset while reconnecting. */
const knownMaxPayload = new WeakMap<NatsConnection, number>();

export function maxMessageBytes(nc: NatsConnection): number {
  const now = nc.info?.max_payload;
  if (now !== undefined) {
    knownMaxPayload.set(nc, now);
    return now;
  }
  return knownMaxPayload.get(nc) ?? 1024 * 1024;
}

/**
 * A nats.js error translated to ours: no responders, timeout, closed connection (typed errors of
 * @nats-io/nats-core 3.x; a RequestError carries the reason as its cause). Others pass through.
 */
export function translateNatsError(err: unknown, subject: string, timeoutMs: number): Error {
  if (err instanceof BusError) return err;
  if (err instanceof natsErrors.NoRespondersError || (err instanceof natsErrors.RequestError && err.isNoResponders())) return new NoRespondersBusError(subject);
  if (err instanceof natsErrors.TimeoutError || (err instanceof natsErrors.RequestError && err.cause instanceof natsErrors.TimeoutError)) return new BusTimeoutError(subject, timeoutMs);
  if (err instanceof natsErrors.ClosedConnectionError || err instanceof natsErrors.DrainingConnectionError) return new ConnectionClosedError(subject, { cause: err });
  return err instanceof Error ? err : new BusError(`${subject}: ${String(err)}`);
}

/**
 * The connection's reply-inbox prefix (the nats.js `inboxPrefix` option; `_INBOX` by default).
 * Every inbox this module makes uses it, so a per-role user that may only subscribe to its own
 * `_INBOX_<user>.>` (docs/SECURITY.md) gets its replies and uploads there.
 */
export function inboxPrefixOf(nc: NatsConnection): string {
  const prefix = (nc as { readonly options?: { readonly inboxPrefix?: string } }).options?.inboxPrefix;
  return prefix !== undefined && prefix !== '' ? prefix : '_INBOX';
}

function chunkBytes(nc: NatsConnection): number {
  return maxMessageBytes(nc) - HEADER_ROOM - CHUNK_OVERHEAD_BYTES;
}

function toHeaders(h: Readonly<Record<string, string>> | undefined, extra?: Record<string, string>): MsgHdrs | undefined {
  if (h === undefined && extra === undefined) return undefined;
  const out = natsHeaders();
  for (const [k, v] of Object.entries({ ...h, ...extra })) out.set(k, v);
  return out;
}

export interface PublishLargeOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly reply?: string;
}

/** Publishes a payload of any size (chunked when over max_payload). */
export function publishLarge(nc: NatsConnection, subject: string, payload: Uint8Array, opts: PublishLargeOptions = {}): void {
  const reply = opts.reply !== undefined ? { reply: opts.reply } : {};
  if (payload.length + HEADER_ROOM <= maxMessageBytes(nc)) {
    const headers = toHeaders(opts.headers);
    nc.publish(subject, payload, { ...reply, ...(headers !== undefined ? { headers } : {}) });
    return;
  }
  const headers = toHeaders(opts.headers, { [CHUNKED]: '1' });
  for (const chunk of splitIntoChunks(payload, chunkBytes(nc))) {
    nc.publish(subject, encodeChunk(chunk), { ...reply, ...(headers !== undefined ? { headers } : {}) });
  }
}

export interface SubscribeLargeOptions {
  readonly queue?: string;
  /** Bound on bytes held for incomplete chunked messages (default 512 MiB). */
  readonly maxPendingBytes?: number;
  /** Incomplete chunked messages are dropped (and reported) after this long (default 30 s). */
  readonly chunkTimeoutMs?: number;
  /** Told about dropped or corrupt chunked messages; default: logged to stderr. */
  readonly onError?: (err: Error) => void;
}

/** Subscribes, reassembling chunked messages; the handler sees whole payloads. */
export function subscribeLarge(nc: NatsConnection, subject: string, handler: (payload: Uint8Array, msg: Msg) => void | Promise<void>, opts: SubscribeLargeOptions = {}): Subscription {
  const onError = opts.onError ?? ((err: Error) => console.error(`[bus] ${subject}: ${err.message}`));
  const assembler = new ChunkAssembler({ maxPendingBytes: opts.maxPendingBytes ?? 512 * 1024 * 1024, timeoutMs: opts.chunkTimeoutMs ?? 30_000 });
  const sweep = setInterval(
    () => {
      for (const { id, missing } of assembler.expire()) onError(ChunkAssembler.missingError(id, missing));
    },
    Math.min(5000, opts.chunkTimeoutMs ?? 30_000),
  );
  sweep.unref();
  const wildcard = subject.split('.').some((token) => token === '*' || token === '>');
  const deliver = (payload: Uint8Array, msg: Msg): void => {
    try {
      const r = handler(payload, msg);
      if (r instanceof Promise) r.catch((err: unknown) => onError(err as Error));
    } catch (err) {
      onError(err as Error);
    }
  };
  const sub = nc.subscribe(subject, {
    ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
    callback: (err, msg) => {
      if (err !== null) {
        onError(err);
        return;
      }
      if (msg.headers?.get(CHUNKED) !== '1') {
        deliver(msg.data, msg);
        return;
      }
      try {
        const chunk = decodeChunk(msg.data);
        // Under a wildcard, chunks are told apart per subject too: a publisher on one subject (say
        // another rank's `up.<r>`) cannot complete or corrupt a message arriving on another.
        const whole = assembler.add(wildcard ? { ...chunk, id: `${msg.subject}#${chunk.id}` } : chunk);
        if (whole !== undefined) deliver(whole, msg);
      } catch (e) {
        onError(e as Error);
      }
      // Messages dropped to stay within the memory bound are reported once, not kept.
      for (const id of assembler.evicted.splice(0)) onError(new ChunkError(id, 'dropped incomplete: the reassembly memory bound was reached'));
    },
  });
  void sub.closed.then(() => clearInterval(sweep));
  return sub;
}

export interface RequestLargeOptions {
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Aborts the request: it rejects with the signal's reason (an Error), or a BusError. */
  readonly signal?: AbortSignal;
}

function abortReason(signal: AbortSignal, subject: string): Error {
  return signal.reason instanceof Error ? signal.reason : new BusError(`${subject}: request aborted`);
}

/**
 * Request/reply where request and reply may each exceed max_payload. One attempt: see
 * requestWithRetry (retry.ts) for retries across broker restarts. Rejects with BusTimeoutError,
 * NoRespondersBusError, RemoteError (the handler's answer), ConnectionClosedError, or the abort reason.
 */
export async function requestLarge(nc: NatsConnection, subject: string, payload: Uint8Array, opts: RequestLargeOptions = {}): Promise<Uint8Array> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const signal = opts.signal;
  if (signal?.aborted === true) throw abortReason(signal, subject);
  if (nc.isClosed()) throw new ConnectionClosedError(subject);
  const inbox = createInbox(inboxPrefixOf(nc));
  let settle: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void } | undefined;
  const result = new Promise<Uint8Array>((resolve, reject) => {
    settle = { resolve, reject };
  });
  // Settled early by an error thrown below; never left unhandled.
  result.catch(() => undefined);
  const timer = setTimeout(() => settle?.reject(new BusTimeoutError(subject, timeoutMs)), timeoutMs);
  const onAbort = (): void => settle?.reject(abortReason(signal as AbortSignal, subject));
  signal?.addEventListener('abort', onAbort, { once: true });
  let sub: Subscription | undefined;
  try {
    sub = subscribeLarge(
      nc,
      inbox,
      (data, msg) => {
        // A 503 status on the inbox means nobody listens on the subject.
        if (msg.headers?.code === 503) {
          settle?.reject(new NoRespondersBusError(subject));
          return;
        }
        const code = msg.headers?.get(ERROR_CODE);
        if (code !== undefined && code !== '') settle?.reject(new RemoteError(subject, code, new TextDecoder().decode(data)));
        else settle?.resolve(data);
      },
      { onError: (err) => settle?.reject(err) },
    );
    if (payload.length + HEADER_ROOM <= maxMessageBytes(nc)) {
      const headers = toHeaders(opts.headers);
      nc.publish(subject, payload, { reply: inbox, ...(headers !== undefined ? { headers } : {}) });
    } else {
      const handshake = nc.request(subject, new Uint8Array(0), {
        timeout: timeoutMs,
        headers: toHeaders(opts.headers, { [UPLOAD]: String(payload.length) }),
      });
      // An abort or timeout of the whole request also ends the handshake wait.
      const upload = await Promise.race([
        handshake.catch((err: unknown) => {
          throw translateNatsError(err, subject, timeoutMs);
        }),
        result.then(() => {
          throw new BusError(`${subject}: a reply arrived before the upload handshake`);
        }),
      ]);
      const code = upload.headers?.get(ERROR_CODE);
      if (code !== undefined && code !== '') throw new RemoteError(subject, code, new TextDecoder().decode(upload.data));
      // The server names its private upload subject as the reply subject of its answer (so a user
      // with only allow_responses may publish there) and, for older servers, in the body.
      const uploadTo = upload.reply !== undefined && upload.reply !== '' ? upload.reply : new TextDecoder().decode(upload.data);
      publishLarge(nc, uploadTo, payload, { reply: inbox, ...(opts.headers !== undefined ? { headers: opts.headers } : {}) });
    }
    return await result;
  } catch (err) {
    throw translateNatsError(err, subject, timeoutMs);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    sub?.unsubscribe();
  }
}

/** An upload announcing more bytes than the server accepts (refused before any chunk is held). */
export class RequestTooLargeError extends BusError {
  constructor(
    readonly subject: string,
    readonly announced: string,
    readonly maxBytes: number,
  ) {
    super(`${subject}: refused an upload announcing ${announced} B, above the limit of ${maxBytes} B (maxRequestBytes; raise it if the model really needs larger messages)`);
    this.name = 'RequestTooLargeError';
  }
}

/** A handler error with a code that travels to the requester (other errors travel as INTERNAL). */
export class HandlerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HandlerError';
  }
}

export interface ServeLargeOptions {
  readonly queue?: string;
  readonly uploadTimeoutMs?: number;
  readonly onError?: (err: Error) => void;
  /**
   * Largest request accepted (default DEFAULT_MAX_REQUEST_BYTES, 256 MiB): an upload announcing
   * more is refused at the handshake with code TOO_LARGE, before any chunk is held.
   */
  readonly maxRequestBytes?: number;
  /** Told about each request that came without a reply subject (default: logged via onError, at most once per 5 s). */
  readonly onNoReply?: (msg: Msg) => void;
}

/** Default bound on one request served by serveLarge. */
export const DEFAULT_MAX_REQUEST_BYTES = 256 * 1024 * 1024;

/**
 * Serves request/reply where requests and replies may exceed max_payload. The handler gets the
 * request's bytes, the message to answer and the subject the request came on (for an upload, the
 * handshake's: under a wildcard, its last tokens can name the sender, whose NATS user alone may
 * publish there — the upload's private subject only it is told).
 */
export function serveLarge(
  nc: NatsConnection,
  subject: string,
  handler: (payload: Uint8Array, msg: Msg, subject: string) => Promise<Uint8Array> | Uint8Array,
  opts: ServeLargeOptions = {},
): Subscription {
  const onError = opts.onError ?? ((err: Error) => console.error(`[bus] ${subject}: ${err.message}`));
  const maxRequestBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  let noReply = 0;
  let noReplyLoggedAt = -Infinity;
  const onNoReply =
    opts.onNoReply ??
    (() => {
      noReply++;
      if (Date.now() - noReplyLoggedAt < 5000) return;
      noReplyLoggedAt = Date.now();
      onError(new BusError(`${subject}: ignored ${noReply} request(s) without a reply subject so far (use request/reply, not publish)`));
    });
  const respond = async (payload: Uint8Array, msg: Msg, requestSubject: string): Promise<void> => {
    if (msg.reply === undefined || msg.reply === '') {
      onNoReply(msg);
      return;
    }
    let out: Uint8Array;
    try {
      out = await handler(payload, msg, requestSubject);
    } catch (err) {
      const code = err instanceof HandlerError ? err.code : 'INTERNAL';
      nc.publish(msg.reply, new TextEncoder().encode((err as Error).message), { headers: toHeaders(undefined, { [ERROR_CODE]: code }) });
      if (!(err instanceof HandlerError)) onError(err as Error);
      return;
    }
    publishLarge(nc, msg.reply, out);
  };
  return subscribeLarge(
    nc,
    subject,
    (payload, msg) => {
      const upload = msg.headers?.get(UPLOAD);
      if (upload === undefined || upload === '') return respond(payload, msg, msg.subject);
      const announced = Number(upload);
      if (!Number.isSafeInteger(announced) || announced < 0 || announced > maxRequestBytes) {
        const err = new RequestTooLargeError(subject, upload, maxRequestBytes);
        if (msg.reply !== undefined && msg.reply !== '') msg.respond(new TextEncoder().encode(err.message), { headers: toHeaders(undefined, { [ERROR_CODE]: 'TOO_LARGE' }) });
        else onNoReply(msg);
        onError(err);
        return undefined;
      }
      // Large request: take it on a private subject so all its chunks reach this member.
      const uploadSubject = createInbox(inboxPrefixOf(nc));
      const timer = setTimeout(() => {
        uploadSub.unsubscribe();
        onError(new BusError(`${subject}: an upload of ${upload} B did not complete in time`));
      }, opts.uploadTimeoutMs ?? 60_000);
      const uploadSub = subscribeLarge(
        nc,
        uploadSubject,
        (whole, chunkMsg) => {
          clearTimeout(timer);
          uploadSub.unsubscribe();
          return respond(whole, chunkMsg, msg.subject);
        },
        // The upload may carry at most what it announced.
        { onError, maxPendingBytes: Math.max(1, announced) },
      );
      // As the reply subject too: nats-server lets the requester publish to the reply subject of a
      // message it received (allow_responses), so uploaders need no publish right on others' inboxes.
      msg.respond(new TextEncoder().encode(uploadSubject), { reply: uploadSubject });
      return undefined;
    },
    { ...(opts.queue !== undefined ? { queue: opts.queue } : {}), onError, maxPendingBytes: maxRequestBytes },
  );
}
