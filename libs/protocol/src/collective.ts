// The process group's messages (libs/collectives): `up` (a rank to rank 0), `down` (rank 0 to
// everyone, or to one rank) and `p2p` (ring neighbours). Every message names the group's world size
// and generation, so a receiver can ignore traffic of another incarnation of the group; the codecs
// check internal consistency (ranks below the world size, integer sequence numbers, parts as bytes).
import { defineMsgpackKind, type Codec } from './messages.ts';
import type { Check, Obj } from './validate.ts';

interface GroupStamp {
  readonly worldSize: number;
  /** The group's generation (absent: a group started without one). */
  readonly generation?: number;
}

/**
 * A rank announcing itself (seq 0), contributing to collective `seq` (≥ 1), or asking about a
 * contribution rank 0 already confirmed (`ask`: rank 0 answers with the result, or the progress).
 */
export type CollectiveUp =
  | (GroupStamp & { readonly kind: 'hello'; readonly rank: number; readonly seq: 0 })
  | (GroupStamp & {
      readonly kind: 'data';
      readonly rank: number;
      readonly seq: number;
      /** Every collective of this rank up to and including `ack` has finished (rank 0 may forget their results). */
      readonly ack: number;
      readonly data: Uint8Array;
    })
  | (GroupStamp & { readonly kind: 'ask'; readonly rank: number; readonly seq: number; readonly ack: number });

export type CollectiveDown =
  | (GroupStamp & { readonly kind: 'welcome'; readonly seq: 0 })
  | (GroupStamp & { readonly kind: 'result'; readonly seq: number; readonly parts: Uint8Array[] })
  /**
   * Rank 0 has these ranks' contributions to `seq` (it is alive, and these are the ones it waits
   * for); with `resend`, the others should send theirs again now (rank 0 just reconnected).
   */
  | (GroupStamp & { readonly kind: 'progress'; readonly seq: number; readonly have: number[]; readonly resend?: boolean })
  | (GroupStamp & { readonly kind: 'error'; readonly seq: number; readonly error: string; readonly op?: string; readonly missing?: number[] });

export type RingPhase = 'rs' | 'ag';

/** A ring all-reduce chunk from rank `from` to its next neighbour, or its acknowledgement back. */
export type CollectiveP2p =
  | (GroupStamp & { readonly kind: 'chunk'; readonly from: number; readonly seq: number; readonly phase: RingPhase; readonly step: number; readonly data: Float32Array })
  | (GroupStamp & { readonly kind: 'ack'; readonly from: number; readonly seq: number; readonly phase: RingPhase; readonly step: number });

function stamp(o: Obj, c: Check): GroupStamp {
  const worldSize = c.int(o, 'worldSize', 1);
  if (o.generation === undefined || o.generation === null) return { worldSize };
  return { worldSize, generation: c.int(o, 'generation') };
}

function rankField(o: Obj, c: Check, key: string, worldSize: number): number {
  const r = c.int(o, key);
  if (r >= worldSize) c.fail(`field '${key}' is ${r}, not below the world size ${worldSize}`);
  return r;
}

function rankList(o: Obj, c: Check, key: string, worldSize: number): number[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > worldSize || v.some((r) => typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r >= worldSize)) {
    c.fail(`field '${key}' must be a list of at most ${worldSize} ranks below ${worldSize}`);
  }
  return v as number[];
}

export const collectiveUpCodec: Codec<CollectiveUp> = defineMsgpackKind<CollectiveUp>('CollectiveUp', (o, c) => {
  const s = stamp(o, c);
  const rank = rankField(o, c, 'rank', s.worldSize);
  if (o.kind === 'hello') {
    if (o.seq !== 0) c.fail(`a hello has seq 0, got ${String(o.seq)}`);
    return { kind: 'hello', rank, seq: 0, ...s };
  }
  if (o.kind !== 'data' && o.kind !== 'ask') c.fail(`field 'kind' must be 'hello', 'data' or 'ask', got ${String(o.kind)}`);
  const seq = c.int(o, 'seq', 1);
  const ack = c.int(o, 'ack');
  if (ack >= seq) c.fail(`field 'ack' (${ack}) must be below seq (${seq})`);
  if (o.kind === 'ask') return { kind: 'ask', rank, seq, ack, ...s };
  return { kind: 'data', rank, seq, ack, data: c.u8(o.data, 'data'), ...s };
});

export const collectiveDownCodec: Codec<CollectiveDown> = defineMsgpackKind<CollectiveDown>('CollectiveDown', (o, c) => {
  const s = stamp(o, c);
  switch (o.kind) {
    case 'welcome':
      if (o.seq !== 0) c.fail(`a welcome has seq 0, got ${String(o.seq)}`);
      return { kind: 'welcome', seq: 0, ...s };
    case 'result': {
      const seq = c.int(o, 'seq', 1);
      if (!Array.isArray(o.parts) || o.parts.length !== s.worldSize) c.fail(`field 'parts' must be an array of ${s.worldSize} byte strings`);
      const parts = (o.parts as unknown[]).map((p, i) => c.u8(p, `parts[${i}]`));
      return { kind: 'result', seq, parts, ...s };
    }
    case 'progress': {
      const resend = c.optBool(o, 'resend');
      return { kind: 'progress', seq: c.int(o, 'seq', 1), have: rankList(o, c, 'have', s.worldSize), ...(resend !== undefined ? { resend } : {}), ...s };
    }
    case 'error': {
      const op = c.optStr(o, 'op');
      const missing = o.missing === undefined || o.missing === null ? undefined : rankList(o, c, 'missing', s.worldSize);
      return { kind: 'error', seq: c.int(o, 'seq'), error: c.str(o, 'error'), ...(op !== undefined ? { op } : {}), ...(missing !== undefined ? { missing } : {}), ...s };
    }
    default:
      return c.fail(`field 'kind' must be welcome, result, progress or error, got ${String(o.kind)}`);
  }
});

export const collectiveP2pCodec: Codec<CollectiveP2p> = defineMsgpackKind<CollectiveP2p>('CollectiveP2p', (o, c) => {
  const s = stamp(o, c);
  const from = rankField(o, c, 'from', s.worldSize);
  const seq = c.int(o, 'seq', 1);
  const phase = o.phase === 'rs' || o.phase === 'ag' ? o.phase : c.fail(`field 'phase' must be 'rs' or 'ag', got ${String(o.phase)}`);
  const step = c.int(o, 'step');
  if (step >= Math.max(1, s.worldSize - 1)) c.fail(`field 'step' is ${step}, a ring of ${s.worldSize} has steps 0…${s.worldSize - 2}`);
  if (o.kind === 'ack') return { kind: 'ack', from, seq, phase, step, ...s };
  if (o.kind !== 'chunk') c.fail(`field 'kind' must be 'chunk' or 'ack', got ${String(o.kind)}`);
  return { kind: 'chunk', from, seq, phase, step, data: c.f32(o.data, 'data'), ...s };
});
