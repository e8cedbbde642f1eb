import t from 'tap';
import { didYouMean, levenshtein } from '../mod.ts';

t.test('levenshtein', async (t) => {
  t.equal(levenshtein('epoch', 'epochs'), 1);
  t.equal(levenshtein('strateg', 'strategy'), 1);
  t.equal(levenshtein('', 'abc'), 3);
  t.equal(levenshtein('kitten', 'sitting'), 3);
  t.equal(levenshtein('same', 'same'), 0);
});

t.test('didYouMean: the nearest candidate within a third of the word, else nothing', async (t) => {
  t.equal(didYouMean('epoch', ['epochs', 'strategy']), ' (did you mean epochs?)');
  t.equal(didYouMean('epoch', ['epochs'], { prefix: '--' }), ' (did you mean --epochs?)');
  t.equal(didYouMean('zzzzzzzz', ['epochs', 'strategy']), '', 'too far: no suggestion');
  t.equal(didYouMean('x', []), '', 'no candidates');
  t.equal(didYouMean('DIM', ['dim', 'lr']), '', 'case matters by default');
  t.equal(didYouMean('DIM', ['dim', 'lr'], { ignoreCase: true }), ' (did you mean dim?)');
});
