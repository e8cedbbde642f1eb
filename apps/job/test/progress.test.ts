// Progress after a mirrored group shrinks (--min-trainers): the step total and the ETA follow the
// new world size (before, a 3 → 2 shrink showed e.g. "step 431/354").
import t from 'tap';
import { parseJobFlags, type JobPlan } from '../src/flags.ts';
import { Progress, formatDuration } from '../src/progress.ts';
import { lossReport } from './loss-report.ts';

const mirrored = (): JobPlan => parseJobFlags(['--job', 'shrink', '--strategy', 'mirrored', '--trainers', '3', '--min-trainers', '1', '--batch-size', '10', '--epochs', '2'], {}) as JobPlan;

/** A clock the test moves by hand, so the ETA is a number rather than a timing. */
function clock(): { now: () => number; set: (ms: number) => void } {
  let ms = 0;
  return { now: () => ms, set: (v) => (ms = v) };
}

function report(p: Progress, ranks: number, step: number): void {
  for (let rank = 0; rank < ranks; rank++) p.onLoss(lossReport({ job: 'shrink', rank, step, epoch: 0, loss: 0.5, examplesPerSec: 100, strategy: 'mirrored' }));
}

t.test('a shrinking mirrored group: the step total and the ETA follow the world size', async (t) => {
  const lines: string[] = [];
  const c = clock();
  const p = new Progress(mirrored(), (l) => lines.push(l), 0, c.now);
  // 300 examples, 3 ranks × 10: 10 global steps an epoch, 20 in all.
  p.setExamples(300);
  report(p, 3, 1);
  c.set(10_000);
  report(p, 3, 11);
  t.match(p.line(), /step 11\/20 \(55 %\)/);
  t.equal(p.etaSeconds(), 9, '10 steps in 10 s, 9 to go');
  t.match(p.line(), /\| ETA 9s$/);
  c.set(12_000);
  report(p, 3, 13);

  // Rank 2 dies; the group re-forms with 2 ranks from the checkpoint of step 12 (epoch 1, its step 2).
  // The trainers resume at the same example: step 2 × 3/2 = 3 of an epoch of 15 global steps of 20.
  p.setWorldSize(2, 12);
  t.equal(p.worldSize, 2);
  t.match(p.line(), /step 12\/24 \(50 %\) .* over 2 rank\(s\)/, 'total 12 + (15 - 3); the ranks are back at the checkpoint; rank 2 is forgotten');
  t.equal(p.etaSeconds(), undefined, 'no ETA until the new group has a rate of its own');
  c.set(20_000);
  report(p, 2, 13);
  c.set(24_000);
  report(p, 2, 15);
  t.equal(p.etaSeconds(), 18, '2 steps in 4 s at the new size, 9 to go');
  t.match(lines.at(-1) ?? '', /step 15\/24 .*\| ETA 18s$/);

  // Shrinks again, to 1, from a checkpoint at step 18 of the 2-rank group (epoch 1, its step 3 + 6 = 9):
  // 9 × 2 = step 18 of an epoch of 30 single-rank steps.
  p.setWorldSize(1, 18);
  t.match(p.line(), /step 15\/30 /, 'total 18 + (30 - 18); a rank behind the checkpoint keeps its step');
  report(p, 1, 30);
  t.match(p.line(), /step 30\/30 \(100 %\)/);
  t.equal(p.etaSeconds(), undefined, 'nothing left: no ETA');
});

t.test('a second shrink from the same checkpoint counts from the size that wrote it', async (t) => {
  const p = new Progress(mirrored(), () => undefined, 1e9);
  p.setExamples(300);
  report(p, 3, 14);
  p.setWorldSize(2, 12); // checkpoint of the 3-rank group at step 12: epoch 1, its step 2
  report(p, 2, 13);
  p.setWorldSize(1, 12); // the same checkpoint again: step 2 × 3/1 = 6 of an epoch of 30
  t.match(p.line(), /step 12\/36 /, '12 + (30 - 6)');
});

t.test('a shrink before any checkpoint starts over at the new size; the same size or ps keep the total', async (t) => {
  const p = new Progress(mirrored(), () => undefined, 1e9);
  p.setExamples(300);
  report(p, 3, 4);
  p.setWorldSize(2, 0);
  t.match(p.line(), /step 0\/30 /, '2 epochs of 15');
  p.setWorldSize(2, 0);
  t.match(p.line(), /step 0\/30 /, 'same size: unchanged');

  const ps = new Progress(parseJobFlags(['--job', 'shrink', '--trainers', '3', '--batch-size', '10', '--epochs', '2'], {}) as JobPlan, () => undefined, 1e9);
  ps.setExamples(300);
  report(ps, 3, 5);
  ps.setWorldSize(2, 0);
  t.match(ps.line(), /step 10\/60 .* over 2 rank\(s\)/, 'ps: pushes of the remaining trainers, total unchanged');
});

t.test('a world size known before the data: the total uses it once the examples are known', async (t) => {
  const p = new Progress(mirrored(), () => undefined, 1e9);
  p.setWorldSize(2, 0);
  p.setExamples(300);
  report(p, 2, 1);
  t.match(p.line(), /step 1\/30 /);
});

t.test('durations', async (t) => {
  t.equal(formatDuration(0), '0s');
  t.equal(formatDuration(59.4), '59s');
  t.equal(formatDuration(185), '3m05s');
  t.equal(formatDuration(3720), '1h02m');
  t.equal(formatDuration(-3), '0s');
});
