// ProcessGroup.init, the entry point (torch.distributed.init_process_group): picks a backend by
// name from a registry (c10d's Backend.register_backend) and returns the ProcessGroup interface.
// 'star' is built in (src/star.ts); a second backend (ring) registers a factory of its own.
import { RendezvousError } from './errors.ts';
import { StarProcessGroup } from './star.ts';
import type { GroupOptions, ProcessGroup as Group } from './types.ts';

export type BackendFactory = (o: GroupOptions) => Promise<Group>;

const backends = new Map<string, BackendFactory>([['star', (o) => StarProcessGroup.init(o)]]);

/** Makes a backend available to ProcessGroup.init({ backend: name }). */
export function registerBackend(name: string, factory: BackendFactory): void {
  if (backends.has(name)) throw new RendezvousError(`a process-group backend named '${name}' is registered already`);
  backends.set(name, factory);
}

export function backendNames(): string[] {
  return [...backends.keys()];
}

export type ProcessGroup = Group;

export const ProcessGroup = {
  /** Rendezvous and a group of the chosen backend (default 'star'): resolves when all worldSize ranks are present; times out naming the missing ones. */
  init(o: GroupOptions): Promise<Group> {
    const name = o.backend ?? 'star';
    const factory = backends.get(name);
    if (factory === undefined) return Promise.reject(new RendezvousError(`unknown process-group backend '${name}' (known: ${backendNames().join(', ')})`));
    return factory(o);
  },
};
