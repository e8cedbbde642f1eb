// Selection policies of the thesis: every machine, the ones with GPUs, the CPU-only ones, the
// energy-efficient ones. An empty selection is an error that lists what the blueprint has.
import { SelectionError } from './errors.ts';

export type SelectionPolicy = 'all' | 'gpus' | 'cpus' | 'energy';

export const SELECTION_POLICIES: readonly SelectionPolicy[] = ['all', 'gpus', 'cpus', 'energy'];

/** What a selection needs to know of a machine (a blueprint Machine or an agent's NodeInfo fits). */
export interface Selectable {
  readonly name: string;
  readonly gpus?: number | readonly unknown[];
  readonly energyEfficient?: boolean;
}

export function gpuCount(m: Selectable): number {
  return Array.isArray(m.gpus) ? m.gpus.length : typeof m.gpus === 'number' ? m.gpus : 0;
}

export function parseSelectionPolicy(raw: string): SelectionPolicy {
  const s = raw.replace(/^-+/, '');
  if (!(SELECTION_POLICIES as readonly string[]).includes(s)) throw new SelectionError(`--use must be one of ${SELECTION_POLICIES.join(', ')}, got '${raw}'`);
  return s as SelectionPolicy;
}

const describe: Record<SelectionPolicy, string> = { all: 'every machine', gpus: 'machines with GPUs', cpus: 'CPU-only machines', energy: 'energy-efficient machines' };

/** The machines a policy selects, in the blueprint's order. */
export function selectMachines<M extends Selectable>(machines: readonly M[], policy: SelectionPolicy): M[] {
  const keep: Record<SelectionPolicy, (m: M) => boolean> = {
    all: () => true,
    gpus: (m) => gpuCount(m) > 0,
    cpus: (m) => gpuCount(m) === 0,
    energy: (m) => m.energyEfficient === true,
  };
  const out = machines.filter(keep[policy]);
  if (out.length === 0) {
    const have = machines.map((m) => `${m.name} (${gpuCount(m)} GPU${gpuCount(m) === 1 ? '' : 's'}${m.energyEfficient === true ? ', energy efficient' : ''})`).join(', ');
    throw new SelectionError(
      `--use ${policy} selects no machine: there are no ${describe[policy]} among ${machines.length === 0 ? 'no machines at all' : have}; pick another policy or add such a machine`,
    );
  }
  return out;
}
