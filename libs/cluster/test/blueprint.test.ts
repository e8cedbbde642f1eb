import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify as toYaml } from 'yaml';
import { BlueprintError, blueprintFormatOf, loadBlueprint, machineNameOf, parseBlueprint } from '../mod.ts';

const fixture = (f: string): string => join(import.meta.dirname, 'fixtures', f);

t.test('our shape: every field, in order', async (t) => {
  const bp = loadBlueprint(fixture('blueprint.json'));
  t.equal(bp.source, fixture('blueprint.json'));
  t.same(
    bp.machines.map((m) => m.name),
    ['gpu-1', 'gpu-2', 'cpu-1', 'eco-1', 'eco-2'],
  );
  t.same(bp.machines[0], { name: 'gpu-1', address: '10.0.0.1', cores: 16, memoryGiB: 64, gpus: 2, labels: { zone: 'a' }, ssh: 'train@10.0.0.1' });
  t.same(bp.machines[2], { name: 'cpu-1', address: '10.0.0.3', cores: 8, memoryGiB: 32 });
  t.equal(bp.machines[3].energyEfficient, true);
});

t.test("the thesis's shape maps to machines named after their IP", async (t) => {
  const bp = loadBlueprint(fixture('thesis.json'));
  t.same(bp.machines, [
    { name: '192-168-1-10', address: '192.168.1.10', gpus: 2, energyEfficient: false },
    { name: '192-168-1-11', address: '192.168.1.11', gpus: 0, energyEfficient: true },
    { name: '192-168-1-12', address: '192.168.1.12', gpus: 1, energyEfficient: true },
  ]);
  t.equal(machineNameOf('fe80::1%eth0'), 'fe80--1_eth0');
});

t.test('a name defaults to the address; numbers may be strings; labels are strings', async (t) => {
  const bp = parseBlueprint(JSON.stringify({ machines: [{ address: 'host.example', gpus: '1', energyEfficient: 'no', labels: { rack: 3, ssd: true } }] }));
  t.same(bp.machines[0], { name: 'host-example', address: 'host.example', gpus: 1, energyEfficient: false, labels: { rack: '3', ssd: 'true' } });
  t.equal(bp.source, '<inline>');
});

t.test('passwords are refused wherever they are, with what to do instead', async (t) => {
  for (const doc of [
    { connections: [{ IP: '1.2.3.4', GPUS: 0, 'energy efficient': false, password: 'hunter2' }] },
    { machines: [{ name: 'a', address: 'x', labels: { Password: 'x' } }] },
    { password: 'x', machines: [] },
    { machines: [{ name: 'a', address: 'x', ssh: { passphrase: 'y' } }] },
  ]) {
    const err = t.throws(() => parseBlueprint(JSON.stringify(doc), 'bp.json')) as BlueprintError;
    t.type(err, BlueprintError);
    t.match(err.message, /^blueprint bp\.json: .*pass.*never read from a blueprint.*ssh.*keys/is);
  }
  const err = t.throws(() => parseBlueprint(JSON.stringify({ machines: [{ name: 'a', address: 'x', ssh: 'me:secret@host' }] }), 'bp.json')) as BlueprintError;
  t.equal(err.field, 'machines[0].ssh');
  t.match(err.message, /ssh key/);
});

t.test('every invalid field is a typed error naming the file and the field', async (t) => {
  const cases: [unknown, string, RegExp][] = [
    [{ machines: [{ name: 'a', address: 'x', gpus: -1 }] }, 'machines[0].gpus', /integer >= 0/],
    [{ machines: [{ name: 'a', address: 'x', cores: 1.5 }] }, 'machines[0].cores', /integer >= 1/],
    [{ machines: [{ name: 'a', address: 'x', memoryGiB: 'lots' }] }, 'machines[0].memoryGiB', /number >= 0/],
    [{ machines: [{ name: 'a', address: 'x', energyEfficient: 'maybe' }] }, 'machines[0].energyEfficient', /true or false/],
    [{ machines: [{ name: 'a', address: 'x', labels: ['x'] }] }, 'machines[0].labels', /map of label names/],
    [{ machines: [{ name: 'a', address: 'x', labels: { k: { deep: 1 } } }] }, 'machines[0].labels.k', /must be a string/],
    [{ machines: [{ name: 'a', address: 'x', colour: 'red' }] }, 'machines[0].colour', /unknown field/],
    [{ machines: [{ name: 'a b', address: 'x' }] }, 'machines[0].name', /subject token/],
    [{ machines: [{ name: 'a' }] }, 'machines[0].address', /is missing/],
    [{ machines: [{ name: 'a', address: '' }] }, 'machines[0].address', /non-empty string/],
    [
      {
        machines: [
          { name: 'a', address: 'x' },
          { name: 'a', address: 'y' },
        ],
      },
      'machines[1].name',
      /also machine 0/,
    ],
    [{ machines: ['a'] }, 'machines[0]', /must be an object/],
    [{ machines: {} }, 'machines', /array/],
    [{ machines: [] }, 'machines', /empty/],
    [{ connections: [] }, 'connections', /empty/],
    [{ connections: 'x' }, 'connections', /array/],
    [{ connections: [3] }, 'connections[0]', /must be an object/],
    [{ connections: [{ GPUS: 1 }] }, 'connections[0].IP', /is missing/],
    [{ hosts: [] }, 'machines', /is missing/],
    [[1], '(top level)', /must be an object/],
  ];
  for (const [doc, field, reason] of cases) {
    const err = t.throws(() => parseBlueprint(JSON.stringify(doc), 'bp.json'), JSON.stringify(doc)) as BlueprintError;
    t.type(err, BlueprintError);
    t.equal(err.file, 'bp.json');
    t.equal(err.field, field, JSON.stringify(doc));
    t.match(err.message, reason);
    t.match(err.message, `blueprint bp.json: ${field}`);
    // The same document as YAML: the same field, the same words.
    const yamlErr = t.throws(() => parseBlueprint(toYaml(doc), 'bp.yaml'), `yaml: ${JSON.stringify(doc)}`) as BlueprintError;
    t.equal(yamlErr.field, field);
    t.equal(yamlErr.message, err.message.replace('bp.json', 'bp.yaml'), `yaml: ${JSON.stringify(doc)}`);
  }
});

t.test('a file that is not JSON or cannot be read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bp-'));
  writeFileSync(join(dir, 'bad.json'), '{ machines: [');
  t.throws(() => loadBlueprint(join(dir, 'bad.json')), { name: 'BlueprintError', message: /bad\.json: \(file\): is not JSON/ });
  t.throws(() => loadBlueprint(join(dir, 'missing.json')), { name: 'BlueprintError', message: /missing\.json: \(file\): cannot be read/ });
});

t.test('YAML blueprints (.yaml/.yml): the same machines, the same checks', async (t) => {
  t.equal(blueprintFormatOf('m.yaml'), 'yaml');
  t.equal(blueprintFormatOf('/x/M.YML'), 'yaml');
  t.equal(blueprintFormatOf('m.json'), 'json');
  t.equal(blueprintFormatOf('machines'), 'json');
  const yaml = loadBlueprint(fixture('blueprint.yaml'));
  t.same(yaml.machines, loadBlueprint(fixture('blueprint.json')).machines);
  t.equal(yaml.source, fixture('blueprint.yaml'));
  const thesis = parseBlueprint('connections:\n  - IP: 192.168.1.10\n    GPUS: 2\n    energy efficient: no\n', 'thesis.yml');
  t.same(thesis.machines, [{ name: '192-168-1-10', address: '192.168.1.10', gpus: 2, energyEfficient: false }]);
  t.throws(() => parseBlueprint('machines:\n  - name: a\n    address: x\n    password: hunter2\n', 'bp.yaml'), {
    name: 'BlueprintError',
    message: /bp\.yaml: machines\[0\]\.password: passwords are never read/,
  });
  t.throws(() => parseBlueprint('machines:\n  - name: a\n    name: b\n    address: x\n', 'bp.yaml'), { name: 'BlueprintError', message: /bp\.yaml: \(file\): is not YAML \(.*[Uu]nique/ });
  t.throws(() => parseBlueprint('machines: [\n', 'bp.yaml'), { name: 'BlueprintError', message: /bp\.yaml: \(file\): is not YAML/ });
  t.throws(() => parseBlueprint('', 'bp.yaml'), { name: 'BlueprintError', message: /bp\.yaml: \(top level\): must be an object/ });
  t.same(parseBlueprint('{"machines": [{"address": "h"}]}', 'bp.json', 'yaml').machines, [{ name: 'h', address: 'h' }], 'JSON is YAML too, when the format is given');
});
