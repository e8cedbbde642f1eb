// --config job.json|job.yaml (issue 15): the launcher's flags from a file, parsed by the real flag
// parser. The command line wins; unknown keys get "did you mean"; paths are relative to the file.
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tsxCommand } from '@actorflow/test-child';
import { JobFlagError, parseJobFlags, type JobPlan } from '../src/flags.ts';
import { configArgs, takeConfigFlag, withConfigFile } from '../src/config-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'job-config-'));
const conf = join(dir, 'conf');
const elsewhere = join(dir, 'elsewhere');
mkdirSync(conf);
mkdirSync(elsewhere);
writeFileSync(join(conf, 'u1.base'), '1\t10\t5\t100\n');
writeFileSync(join(conf, 'u1.test'), '1\t20\t4\t101\n');
const env = { INIT_CWD: elsewhere };

const parse = (args: string[], e: Record<string, string> = env): JobPlan => {
  const p = parseJobFlags(args, e);
  if (p === 'help') throw new Error('help');
  return p;
};
const write = (name: string, text: string): string => {
  const p = join(conf, name);
  writeFileSync(p, text);
  return p;
};

t.test('a YAML file sets flags; paths resolve against its folder, not the cwd', async (t) => {
  write(
    'job.yaml',
    [
      '# a MovieLens run',
      'strategy: mirrored',
      'model: mf',
      'dataset: u1.base',
      'split: file:u1.test',
      'trainers: 3',
      'epochs: 4',
      'batchSize: 256 # camelCase works too',
      'lr: 2e-3',
      'l2: 0.0005',
      'hyper:',
      '  dim: 16',
      'out: runs/a',
      'verbose: true',
      'monitor: false',
      'rating-range: [1, 5]',
    ].join('\n'),
  );
  // Given relative to the folder the command runs in (INIT_CWD), like any user path.
  const plan = parse(['--config', '../conf/job.yaml']);
  t.equal(plan.strategy, 'mirrored');
  t.equal(plan.trainers, 3);
  t.equal(plan.epochs, 4);
  t.equal(plan.batchSize, 256);
  t.equal(plan.dataset, join(conf, 'u1.base'), 'dataset relative to the file');
  t.equal(plan.split, `file:${join(conf, 'u1.test')}`, 'file: split relative to the file');
  t.equal(plan.out, join(conf, 'runs/a'), 'out relative to the file');
  t.equal(plan.verbose, true);
  t.equal(plan.monitor, undefined, 'false leaves a switch off');
  t.same(plan.data.ratingRange, [1, 5], 'a list becomes LO,HI');
  t.same(plan.modelFlags, ['--hyper', 'dim=16', '--lr', '0.002', '--l2', '0.0005']);
});

t.test('JSON works the same; the command line wins, per key for --hyper', async (t) => {
  const file = write('job.json', JSON.stringify({ epochs: 7, 'batch-size': 128, seed: 3, hyper: { dim: 16, initStd: 0.05 }, 'model-flag': ['dense-updates'] }));
  const plan = parse(['--epochs', '2', '--config', file, '--hyper', 'dim=64']);
  t.equal(plan.epochs, 2, 'command line over file');
  t.equal(plan.batchSize, 128, 'file where the command line is silent');
  t.equal(plan.seed, 3);
  t.same(plan.modelFlags, ['--dense-updates', '--hyper', 'initStd=0.05', '--hyper', 'dim=64'], "the file's dim=16 is dropped, initStd kept");
  const eq = parse([`--config=${file}`, '--seed=9']);
  t.equal(eq.seed, 9, '--config=FILE and --flag=value forms');
  t.equal(eq.epochs, 7);
});

t.test('an absolute path and synthetic/mnist specs stay as they are', async (t) => {
  const file = write('abs.yaml', `dataset: ${join(conf, 'u1.base')}\nsplit: random:0.2\nout: /tmp/somewhere\n`);
  const plan = parse(['--config', file]);
  t.equal(plan.dataset, join(conf, 'u1.base'));
  t.equal(plan.split, 'random:0.2');
  t.equal(plan.out, '/tmp/somewhere');
  t.equal(parse(['--config', write('syn.yaml', 'dataset: synthetic:tiny\n')]).dataset, 'synthetic:tiny');
  t.same(configArgs({ dataset: 'mnist:bundled' }, join(conf, 'x.yaml'), ['dataset']), ['--dataset=mnist:bundled']);
  t.same(configArgs({ dataset: 'mnist:imgs' }, join(conf, 'x.yaml'), ['dataset']), [`--dataset=mnist:${join(conf, 'imgs')}`]);
  t.same(
    configArgs({ validation: 'file:v.csv', plan: 'plan.json', blueprint: '/etc/bp.yaml' }, join(conf, 'x.yaml'), ['validation', 'plan', 'blueprint']),
    [`--validation=file:${join(conf, 'v.csv')}`, `--plan=${join(conf, 'plan.json')}`, '--blueprint=/etc/bp.yaml'],
    'every path flag, and file: specs',
  );
  t.same(configArgs({ validation: 0.05 }, join(conf, 'x.yaml'), ['validation']), ['--validation=0.05'], 'a fraction is no path');
});

t.test('bad files: one clear line naming the file and what to do', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['typo.yaml', 'epoch: 3\n', /^--config .*typo\.yaml: unknown key 'epoch' \(did you mean epochs\?\); the keys are the launcher's flags without '--'/],
    ['typo2.json', '{"strateg": "ps"}', /unknown key 'strateg' \(did you mean strategy\?\)/],
    ['far.yaml', 'zzzzzzzz: 1\n', /unknown key 'zzzzzzzz'; the keys/],
    ['broken.yaml', 'epochs: [1, 2\n', /broken\.yaml: not valid YAML: /],
    ['broken.json', '{"epochs": ', /broken\.json: not valid JSON: /],
    ['list.yaml', '- epochs\n- 3\n', /must hold a mapping of flag names to values .*not a list/],
    ['nested.yaml', 'epochs:\n  a: 1\n', /'epochs' must be a string or a number, got object/],
    ['self.yaml', 'config: other.yaml\n', /cannot name another config file/],
    ['bad-value.yaml', 'epochs: -1\n', /--epochs must be a positive integer, got '-1'/],
    ['job.toml', 'epochs = 3\n', /must end in \.json, \.yaml or \.yml/],
  ];
  for (const [name, text, re] of cases) {
    const file = write(name, text);
    t.throws(() => parse(['--config', file]), re, name);
    try {
      parse(['--config', file]);
    } catch (err) {
      t.ok(err instanceof JobFlagError, `${name}: a JobFlagError (exit 2 before anything starts)`);
      t.notMatch((err as Error).message, /\n/, `${name}: one line`);
    }
  }
  t.throws(() => parse(['--config', 'missing.yaml']), { message: `--config: no such file: ${join(elsewhere, 'missing.yaml')}` });
  t.throws(() => parse(['--config']), /--config needs a file/);
  t.throws(() => parse(['--config', 'a.yaml', '--config', 'b.yaml']), /--config is given twice/);
  t.throws(() => parse(['--confg', 'a.yaml']), /unknown flag --confg \(did you mean --config\?\)/, 'a typo of --config itself');
});

t.test('an empty file sets nothing; without --config argv is untouched', async (t) => {
  t.equal(parse(['--config', write('empty.yaml', '')]).strategy, 'ps');
  t.same(withConfigFile(['--epochs', '3'], env, ['epochs']), ['--epochs', '3']);
  t.same(takeConfigFlag(['--a', '--config', 'x', '--b']), { path: 'x', rest: ['--a', '--b'] });
});

t.test('the launcher refuses a bad config file with exit 2 before starting anything', async (t) => {
  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  const file = write('cli.yaml', 'epoch: 3\n');
  const out = join(dir, 'no-out');
  const cmd = tsxCommand(main, ['--config', file, '--out', out]);
  const r = spawnSync(cmd.command, cmd.args, { encoding: 'utf8', env: { ...process.env, INIT_CWD: elsewhere } });
  t.equal(r.status, 2);
  t.match(r.stderr, /^job: --config .*cli\.yaml: unknown key 'epoch' \(did you mean epochs\?\)/);
  t.equal(r.stdout, '');
});
