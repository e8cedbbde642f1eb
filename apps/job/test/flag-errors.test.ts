// Launcher flag errors (issue 15): one line with "did you mean", negative numbers named, and the
// first-class optimizer flags mapped onto the aggregator's flags.
import t from 'tap';
import { JobFlagError, parseJobFlags, parsePrintNatsConfig, type JobPlan } from '../src/flags.ts';

const parse = (args: string[]): JobPlan => {
  const p = parseJobFlags(args, {});
  if (p === 'help') throw new Error('help');
  return p;
};

t.test('unknown flags: one line, with the nearest known flag', async (t) => {
  for (const [args, re] of [
    [['--epoch', '3'], /^unknown flag --epoch \(did you mean --epochs\?\); run with --help for the list of options$/],
    [['--strateg', 'ps'], /did you mean --strategy\?/],
    [['--modle', 'mf'], /did you mean --model\?/],
    [['--moniter'], /did you mean --monitor\?/],
  ] as const) {
    t.throws(() => parse([...args]), re, args.join(' '));
  }
  t.throws(() => parse(['--zzzzzzzz']), { message: 'unknown flag --zzzzzzzz; run with --help for the list of options' }, 'nothing near: no guess');
  t.throws(() => parse(['--epochs']), JobFlagError);
  t.notMatch(
    (() => {
      try {
        parse(['--epochs']);
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })(),
    /\n/,
    'one line',
  );
});

t.test('negative numbers get the value check, not a parser puzzle', async (t) => {
  t.throws(() => parse(['--epochs', '-1']), { message: "--epochs must be a positive integer, got '-1'" });
  t.throws(() => parse(['--trainers', '-2']), /--trainers must be a positive integer, got '-2'/);
});

t.test('--lr, --optimizer, --l2 are the --model-flag path; --monitor is in the plan', async (t) => {
  t.same(parse(['--lr', '0.05', '--optimizer', 'sgd', '--l2', '0']).modelFlags, ['--lr', '0.05', '--l2', '0', '--optimizer', 'sgd']);
  t.same(parse(['--model-flag', 'lr=0.05']).modelFlags, ['--lr', '0.05'], 'the same flags as before');
  t.throws(() => parse(['--lr', 'fast']), { message: "--lr must be a non-negative number, got 'fast'" });
  t.throws(() => parse(['--lr', '-0.1']), /--lr must be a non-negative number, got '-0.1'/);
  t.throws(() => parse(['--optimizer', 'adma']), /--optimizer must be adam, adagrad, sgd, rmsprop, got 'adma' \(did you mean adam\?\)/);
  t.equal(parse(['--monitor']).monitor, true);
  t.equal(parse([]).monitor, undefined);
});

t.test('--print-nats-config: the job id, and --trainers for one user per rank, checked', async (t) => {
  t.equal(parsePrintNatsConfig(['--epochs', '2']), undefined, 'absent: a normal run');
  t.same(parsePrintNatsConfig(['--print-nats-config']), { job: 'job' });
  t.same(parsePrintNatsConfig(['--print-nats-config', '--job', 'ml', '--trainers', '3']), { job: 'ml', trainers: 3 });
  t.throws(() => parsePrintNatsConfig(['--print-nats-config', '--job', 'a.b']), /--job must be letters, digits/);
  for (const bad of ['0', '-1', '2.5', 'x', ''])
    t.throws(() => parsePrintNatsConfig(['--print-nats-config', '--trainers', bad]), /--trainers for --print-nats-config must be a whole number/, `--trainers '${bad}'`);
  t.same(parsePrintNatsConfig(['--print-nats-config', '--nodes', 'gpu-1,cpu_2', '--trainers', '2']), { job: 'job', trainers: 2, nodes: ['gpu-1', 'cpu_2'] }, '--nodes: one user per node agent');
  for (const bad of ['a.b', 'a,a', '', 'a,,b', 'a b'])
    t.throws(() => parsePrintNatsConfig(['--print-nats-config', '--nodes', bad]), /--nodes for --print-nats-config takes the node agents' names/, `--nodes '${bad}'`);
});
