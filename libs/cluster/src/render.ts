// The plan as a person reads it: machines and what runs there, then the strategy, the prediction and why.
import { formatBytes, type ShardingPlan } from './planner.ts';

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r, i) => {
    const line = r
      .map((cell, c) => cell.padEnd(widths[c]))
      .join('  ')
      .trimEnd();
    return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
  });
}

export function renderPlan(plan: ShardingPlan): string {
  const out: string[] = [];
  out.push(`plan: ${plan.model} on ${plan.dataset}, batch ${plan.batchSize}, strategy ${plan.strategy}${plan.requestedStrategy === 'auto' ? ' (auto)' : ''}`);
  if (plan.sizing !== undefined) {
    const z = plan.sizing;
    const hyper = Object.entries(z.hyper).map(([k, x]) => `${k}=${String(x)}`);
    out.push(
      `model: ${formatBytes(z.parameterBytes)} of parameters, ${z.optimizerSlots} optimizer slot(s) per parameter${hyper.length > 0 ? `, ${hyper.join(' ')}` : ''}${z.epochs !== undefined ? `, ${z.epochs} epoch(s)` : ''}`,
    );
  }
  out.push(`${plan.trainers} trainer(s), ${plan.dataShards} data shard(s)${plan.strategy === 'ps' ? `, ${plan.psShards} parameter shard(s)` : ', 1 aggregator'}, 1 evaluator`);
  out.push('');
  out.push(
    ...table([
      ['machine', 'memory', 'planned', 'calibrated', 'actors'],
      ...plan.machines.map((m) => [m.name, formatBytes(m.memoryBytes), formatBytes(m.plannedBytes), m.calibrated ? 'yes' : 'no', m.roles.length > 0 ? m.roles.join(' ') : '(none)']),
    ]),
  );
  out.push('');
  const p = plan.predicted;
  out.push(
    `predicted step: ${p.stepMs.toFixed(2)} ms (compute ${p.computeMs.toFixed(2)} ms, communication ${p.communicationMs.toFixed(2)} ms), ${p.examplesPerSec} examples/s, ${p.epochSeconds.toFixed(1)} s per epoch${p.trainSeconds !== undefined ? `, ${p.trainSeconds.toFixed(1)} s in all` : ''}`,
  );
  const a = plan.alternative;
  if (a !== undefined) {
    out.push(
      'infeasible' in a ? `${a.strategy} instead: does not fit (${a.infeasible})` : `${a.strategy} instead: ${a.predicted.stepMs.toFixed(2)} ms per step, ${a.predicted.examplesPerSec} examples/s`,
    );
  }
  out.push('', 'why:', ...plan.reasons.map((r) => `  - ${r}`));
  if (plan.risks.length > 0) out.push('risks:', ...plan.risks.map((r) => `  - ${r}`));
  out.push('assumptions:', ...plan.assumptions.map((r) => `  - ${r}`));
  return `${out.join('\n')}\n`;
}
