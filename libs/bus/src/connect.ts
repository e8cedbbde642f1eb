// Connecting with BusOptions.
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { BusError } from './errors.ts';
import { busOptionsFrom, toConnectionOptions, type BusOptions } from './options.ts';

export type { NatsConnection };

/** Connects with the given options; missing ones come from NATS_* env and defaults (see busOptionsFrom). */
export async function connect(opts: Partial<BusOptions> = {}): Promise<NatsConnection> {
  const full: BusOptions = { ...busOptionsFrom({}, process.env), ...opts };
  try {
    return await natsConnect(toConnectionOptions(full));
  } catch (err) {
    if (err instanceof BusError) throw err;
    throw new BusError(`cannot connect to NATS at ${full.servers.join(', ')}: ${(err as Error).message}`, { cause: err });
  }
}
