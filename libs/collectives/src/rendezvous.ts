// The rendezvous through a Store (c10d's store-based rendezvous): rank 0 publishes the group's
// record (job, world size, generation, protocol version), every rank checks it against its own
// and announces itself under its rank's key, then everyone waits for all ranks' keys. Each rank
// subscribes to the group's subjects before it announces itself, so once the rendezvous is over
// no message of a collective can be lost for lack of a subscriber.
import { PROTOCOL_VERSION, decodeMsg, encodeMsg } from '@actorflow/protocol';
import { CollectiveTimeoutError, RendezvousError, StoreError } from './errors.ts';
import { waitFor, type Store } from './store.ts';

export interface RendezvousInfo {
  readonly job: string;
  readonly group: string;
  readonly generation: number | undefined;
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutMs: number;
}

interface Record {
  readonly job: string;
  readonly worldSize: number;
  readonly generation: number | null;
  readonly protocol: number;
  readonly rank: number;
}

/** The store keys of a group's rendezvous (one namespace per job, group and generation). */
export function rendezvousPrefix(i: Pick<RendezvousInfo, 'job' | 'group' | 'generation'>): string {
  return `rdzv/${i.job}/${i.group}/${i.generation === undefined ? 'nogen' : `g${i.generation}`}`;
}

function readRecord(b: Uint8Array, what: string): Record {
  let o: unknown;
  try {
    o = decodeMsg(b, what);
  } catch (err) {
    throw new RendezvousError(`${what} in the store is not a rendezvous record: ${(err as Error).message}`);
  }
  const r = o as Partial<Record> | null;
  if (r === null || typeof r !== 'object' || typeof r.job !== 'string' || typeof r.worldSize !== 'number' || typeof r.protocol !== 'number' || typeof r.rank !== 'number') {
    throw new RendezvousError(`${what} in the store is not a rendezvous record`);
  }
  return r as Record;
}

export async function rendezvous(store: Store, i: RendezvousInfo): Promise<void> {
  const prefix = rendezvousPrefix(i);
  const mine: Record = { job: i.job, worldSize: i.worldSize, generation: i.generation ?? null, protocol: PROTOCOL_VERSION, rank: i.rank };
  const bytes = encodeMsg(mine);
  const rankKey = (r: number): string => `${prefix}/rank/${r}`;
  if (i.rank === 0) await store.set(`${prefix}/world`, bytes);
  else {
    let world: Uint8Array;
    try {
      world = await store.get(`${prefix}/world`, i.timeoutMs);
    } catch (err) {
      if (err instanceof StoreError) throw new CollectiveTimeoutError([0], 'rendezvous', 0, i.timeoutMs);
      throw err;
    }
    const w = readRecord(world, 'the group record');
    if (w.protocol !== PROTOCOL_VERSION) {
      throw new RendezvousError(`rank ${i.rank}: rank 0 speaks protocol version ${w.protocol}, this rank ${PROTOCOL_VERSION}: run every rank from the same version of actorflow`);
    }
    if (w.worldSize !== i.worldSize) {
      throw new RendezvousError(
        `rank ${i.rank}: rank 0 refused the rendezvous: rank ${i.rank} expects world size ${i.worldSize}, rank 0 has ${w.worldSize}: start every rank with the same --world-size`,
      );
    }
  }
  await store.set(rankKey(i.rank), bytes);
  const keys = Array.from({ length: i.worldSize }, (_, r) => rankKey(r));
  try {
    await waitFor(store, keys, i.timeoutMs);
  } catch (err) {
    if (!(err instanceof StoreError)) throw err;
    let missing: number[];
    try {
      const left = new Set(await store.missing(keys));
      missing = keys.flatMap((k, r) => (left.has(k) ? [r] : []));
    } catch {
      missing = [0]; // the store (rank 0's) is gone
    }
    throw new CollectiveTimeoutError(missing.length > 0 ? missing : [0], 'rendezvous', 0, i.timeoutMs);
  }
}
