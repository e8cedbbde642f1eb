// The models' recommended early stopping (issue 14): a job given none of --epochs, --validation,
// --early-stop (on the command line or in a --config file) runs with its model's
// `recommended.earlyStop`; any of them given, exactly what they say; --early-stop 0 turns it off.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listModels, modelEntry } from '@actorflow/models';
import { describeRecommendedEarlyStop, EARLY_STOP_USAGE } from '../src/early-stop.ts';
import { jobUsage, parseJobFlags, type JobPlan } from '../src/flags.ts';

const dir = mkdtempSync(join(tmpdir(), 'job-recommended-es-'));
const env = { INIT_CWD: dir };
const parse = (argv: string[]): JobPlan => parseJobFlags(argv, env) as JobPlan;
const RECOMMENDING = ['mf', 'svdpp', 'ncf'];

t.test('no --epochs, --validation, --early-stop: the model recommends early stopping and the job runs with it', async (t) => {
  t.same(
    listModels()
      .filter((m) => m.recommended?.earlyStop !== undefined)
      .map((m) => m.name)
      .sort(),
    [...RECOMMENDING].sort(),
    'the gradient rating models of ratings recommend it',
  );
  for (const name of RECOMMENDING) {
    const rec = modelEntry(name).recommended?.earlyStop;
    t.same(rec, { validation: 0.05, patience: 2, maxEpochs: 10 }, `${name}: 5 % validation, patience 2, up to 10 epochs`);
    const plan = parse(name === 'mf' ? [] : ['--model', name]);
    t.equal(plan.data.validation, '0.05', `${name}: a 5 % validation set`);
    t.equal(plan.earlyStop, 2, `${name}: patience 2`);
    t.equal(plan.epochs, 10, `${name}: up to 10 epochs`);
    t.same(plan.recommendedEarlyStop, rec, `${name}: the plan says it came from the model`);
  }
  // Other flags do not matter: strategy, folds, data options.
  const folds = parse(['--split', 'kfold:5', '--folds', 'all', '--strategy', 'mirrored', '--rating-range', '1,5']);
  t.equal(folds.folds, 5, '--folds all: every fold…');
  t.same(folds.data, { ratingRange: [1, 5], validation: '0.05' }, '… carves its validation set from its own training part');
  t.equal(folds.earlyStop, 2);
});

t.test('--epochs N: exactly today’s job (no validation set, no early stopping)', async (t) => {
  for (const epochs of ['10', '30', '3']) {
    const plan = parse(['--epochs', epochs]);
    t.equal(plan.epochs, Number(epochs));
    t.same(plan.data, {}, `--epochs ${epochs}: no validation set`);
    t.equal(plan.earlyStop, undefined, `--epochs ${epochs}: no early stopping`);
    t.equal(plan.recommendedEarlyStop, undefined);
  }
  const ncf = parse(['--model', 'ncf', '--epochs', '10']);
  t.same([ncf.epochs, ncf.data, ncf.earlyStop], [10, {}, undefined], 'ncf too');
});

t.test('--validation or --early-stop given: what they say, with the model’s recommended epochs (as before)', async (t) => {
  const curve = parse(['--validation', '0.1']);
  t.same([curve.data.validation, curve.earlyStop, curve.epochs, curve.recommendedEarlyStop], ['0.1', undefined, 10, undefined], '--validation alone: the curve, no stopping');
  const own = parse(['--validation', '0.1', '--early-stop', '3']);
  t.same([own.data.validation, own.earlyStop, own.epochs, own.recommendedEarlyStop], ['0.1', 3, 10, undefined]);
  const long = parse(['--validation', '0.05', '--early-stop', '4', '--epochs', '50']);
  t.same([long.earlyStop, long.epochs], [4, 50]);
  t.throws(() => parse(['--early-stop', '3']), { name: 'JobFlagError', message: /^--early-stop 3 needs a validation set: add --validation 0\.05/ }, 'a patience alone still needs --validation');
});

t.test('--early-stop 0: no early stopping, even where the model recommends it', async (t) => {
  const off = parse(['--early-stop', '0']);
  t.same(off.data, {}, 'no validation set');
  t.equal(off.earlyStop, undefined, 'no early stopping');
  t.equal(off.epochs, 10, "mf's recommended 10 epochs");
  t.equal(off.recommendedEarlyStop, undefined);
  const curve = parse(['--early-stop', '0', '--validation', '0.05']);
  t.same([curve.data.validation, curve.earlyStop], ['0.05', undefined], 'with --validation: the curve is recorded, nothing stops');
  t.equal(parse(['--early-stop', '0', '--epochs', '4']).epochs, 4);
  t.equal(parse(['--model', 'svdpp', '--early-stop=0']).epochs, 10, 'svdpp: its recommended epochs');
  const knn = parse(['--model', 'knn', '--early-stop', '0']);
  t.same([knn.earlyStop, knn.data], [undefined, {}], 'a model without early stopping accepts it too (nothing to turn off)');
});

t.test('a bad --early-stop is one clear error', async (t) => {
  for (const bad of ['-1', '1.5', 'x', '', ' ']) {
    t.throws(
      () => parse([`--early-stop=${bad}`]),
      { name: 'JobFlagError', message: `--early-stop takes a patience in epochs, a positive integer (or 0: no early stopping), got '${bad}'` },
      `--early-stop '${bad}'`,
    );
  }
  t.throws(() => parse(['--early-stop', '-2']), { message: /got '-2'/ }, '--early-stop -2 (a dash value) names its value');
  t.throws(() => parse(['--validation', '0', '--early-stop', '2']), { message: /--validation takes a fraction/ });
  t.throws(() => parse(['--model', 'autorec', '--validation', '0.05']), { message: /for gradient rating models .*autorec is a rating model of interactions/ });
});

t.test('a model that does not recommend early stopping is unaffected', async (t) => {
  for (const name of ['autorec', 'neumf', 'multvae', 'knn', 'mnist-cnn']) {
    const plan = parse(['--model', name]);
    const recommended = name === 'knn' ? 1 : (modelEntry(name).recommended?.epochs ?? 10);
    t.equal(plan.epochs, recommended, `${name}: its recommended ${recommended} epochs`);
    t.equal(plan.data.validation, undefined, `${name}: no validation set`);
    t.equal(plan.earlyStop, undefined);
    t.equal(plan.recommendedEarlyStop, undefined);
  }
});

t.test('--config: a file key counts as the flag (epochs, validation, early-stop), any other key does not', async (t) => {
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const fromFile = parse(['--config', file('epochs.yaml', 'epochs: 12\n')]);
  t.same([fromFile.epochs, fromFile.data, fromFile.earlyStop], [12, {}, undefined], 'epochs in the file: as --epochs 12');
  const off = parse(['--config', file('off.yaml', 'early-stop: 0\n')]);
  t.same([off.epochs, off.data, off.earlyStop], [10, {}, undefined], 'early-stop: 0 in the file turns it off');
  const val = parse(['--config', file('val.json', JSON.stringify({ validation: 0.2 }))]);
  t.same([val.data.validation, val.earlyStop, val.epochs], ['0.2', undefined, 10], 'validation in the file: as --validation');
  const other = parse(['--config', file('other.yaml', 'trainers: 1\nhyper: { dim: 8 }\n')]);
  t.same([other.epochs, other.data.validation, other.earlyStop], [10, '0.05', 2], 'other keys: the recommendation applies');
  t.equal(parse(['--config', file('other2.yaml', 'trainers: 1\n'), '--epochs', '6']).epochs, 6, 'the command line’s --epochs counts too');
});

t.test('the startup line and --help say where it comes from and how to turn it off', async (t) => {
  t.equal(
    describeRecommendedEarlyStop({ validation: 0.05, patience: 2, maxEpochs: 10 }),
    "early stopping: validation 5 % of training, patience 2, up to 10 epochs (the model's recommended; --epochs N or --early-stop 0 to turn it off)",
  );
  t.match(describeRecommendedEarlyStop({ validation: 0.07, patience: 3, maxEpochs: 40 }), /^early stopping: validation 7 % of training, patience 3, up to 40 epochs /, 'no float noise');
  t.match(EARLY_STOP_USAGE, /0: no early\s+stopping/);
  t.match(EARLY_STOP_USAGE, /mf, ncf, svdpp: --validation 0\.05 --early-stop 2 --epochs 10/);
  t.ok(jobUsage.includes(EARLY_STOP_USAGE), "the launcher's --help holds it");
  t.match(jobUsage, /--epochs N {17}epochs \(default: the model's recommended, else 10\); a model that recommends early/);
});
