// Small control requests whose payload is a JSON object (a person can send them by hand): the
// evaluator's `<job>.eval.now` and the mirrored replica store's `<job>.ctl.state`. An empty payload
// means "no options"; anything else is validated like every other message.
import { defineJsonKind, type Codec } from './messages.ts';

/** `<job>.eval.now`: score the latest parameters now; `final` marks the job's closing evaluation. */
export interface EvalNowRequest {
  readonly final?: boolean;
}

/** `<job>.ctl.state`: the stored mirrored replica, only if newer than step `after` (else NOT_NEWER). */
export interface StateRequest {
  readonly after?: number;
}

const evalNow = defineJsonKind<EvalNowRequest>('EvalNowRequest', (o, c) => {
  const final = c.optBool(o, 'final');
  return final !== undefined ? { final } : {};
});

const state = defineJsonKind<StateRequest>('StateRequest', (o, c) => {
  // -1: "anything" (the launcher's first poll, before any checkpoint).
  const after = o.after === undefined || o.after === null ? undefined : c.int(o, 'after', -1);
  return after !== undefined ? { after } : {};
});

/** The request codec, with an empty payload decoding to `{}` (no options). */
function orEmpty<T extends object>(codec: Codec<T>): Codec<T> {
  return { kind: codec.kind, encode: (m) => codec.encode(m), decode: (b) => (b.length === 0 ? ({} as T) : codec.decode(b)) };
}

export const evalNowRequestCodec: Codec<EvalNowRequest> = orEmpty(evalNow);
export const stateRequestCodec: Codec<StateRequest> = orEmpty(state);
