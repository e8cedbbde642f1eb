// hyperFlags: --hyper KEY=VALUE typed by defaults, with the error kind the caller wants.
import t from 'tap';
import { FlagError, hyperFlags } from '../mod.ts';

const defaults = { dim: 16, layers: '64,32', bias: true };

t.test('values are typed by the defaults', async (t) => {
  t.same(hyperFlags(['dim=32', 'layers=8', 'bias=false'], defaults, { owner: 'this model' }), { dim: 32, layers: '8', bias: false });
  t.same(hyperFlags([], defaults, { owner: 'this model' }), {});
});

t.test('bad pairs name the key; the caller picks the error kind', async (t) => {
  for (const [pair, re] of [
    ['dim', /KEY=VALUE/],
    ['=3', /KEY=VALUE/],
    ['depth=3', /this model has no such hyper-parameter; it takes dim, layers, bias/],
    ['toString=1', /no such hyper-parameter/],
    ['dim=', /dim must be a number/],
    ['dim=abc', /dim must be a number/],
    ['bias=1', /bias must be true or false/],
  ] as const) {
    const err = t.throws(() => hyperFlags([pair], defaults, { owner: 'this model' }), pair);
    t.ok(err instanceof FlagError, `${pair}: a FlagError`);
    t.match((err as Error).message, re, pair);
  }
  class OtherError extends Error {}
  const err = t.throws(() => hyperFlags(['x=1'], defaults, { owner: 'kNN', error: (m) => new OtherError(m) }));
  t.ok(err instanceof OtherError && !(err instanceof FlagError), "the caller's error kind");
  t.match((err as Error).message, /kNN has no such hyper-parameter/);
});
