import { join } from 'node:path';
import t from 'tap';
import { loadBlueprint, parseSelectionPolicy, selectMachines, SelectionError, SELECTION_POLICIES } from '../mod.ts';

const bp = loadBlueprint(join(import.meta.dirname, 'fixtures', 'blueprint.json'));
const names = (ms: readonly { name: string }[]): string[] => ms.map((m) => m.name);

t.test("the thesis's four selections", async (t) => {
  t.same(SELECTION_POLICIES, ['all', 'gpus', 'cpus', 'energy']);
  t.same(names(selectMachines(bp.machines, 'all')), ['gpu-1', 'gpu-2', 'cpu-1', 'eco-1', 'eco-2']);
  t.same(names(selectMachines(bp.machines, 'gpus')), ['gpu-1', 'gpu-2']);
  t.same(names(selectMachines(bp.machines, 'cpus')), ['cpu-1', 'eco-1', 'eco-2']);
  t.same(names(selectMachines(bp.machines, 'energy')), ['gpu-2', 'eco-1', 'eco-2']);
});

t.test("the thesis's blueprint too, and agents' infos (GPUs as a list)", async (t) => {
  const thesis = loadBlueprint(join(import.meta.dirname, 'fixtures', 'thesis.json'));
  t.same(names(selectMachines(thesis.machines, 'gpus')), ['192-168-1-10', '192-168-1-12']);
  t.same(names(selectMachines(thesis.machines, 'energy')), ['192-168-1-11', '192-168-1-12']);
  const infos = [
    { name: 'a', gpus: [{ name: 'T4', memoryMiB: 15360 }] },
    { name: 'b', gpus: [] },
  ];
  t.same(names(selectMachines(infos, 'gpus')), ['a']);
  t.same(names(selectMachines(infos, 'cpus')), ['b']);
});

t.test('an empty selection says what there is', async (t) => {
  const cpuOnly = bp.machines.filter((m) => (m.gpus ?? 0) === 0);
  const err = t.throws(() => selectMachines(cpuOnly, 'gpus')) as SelectionError;
  t.type(err, SelectionError);
  t.match(err.message, /--use gpus selects no machine: there are no machines with GPUs among cpu-1 \(0 GPUs\), eco-1 \(0 GPUs, energy efficient\)/);
  t.throws(() => selectMachines([{ name: 'x', gpus: 1 }], 'energy'), { message: /no energy-efficient machines among x \(1 GPU\)/ });
  t.throws(() => selectMachines([], 'all'), { message: /among no machines at all/ });
});

t.test('policies parse with or without the thesis dash', async (t) => {
  t.equal(parseSelectionPolicy('-gpus'), 'gpus');
  t.equal(parseSelectionPolicy('energy'), 'energy');
  t.throws(() => parseSelectionPolicy('fast'), { name: 'SelectionError', message: /--use must be one of all, gpus, cpus, energy, got 'fast'/ });
});
