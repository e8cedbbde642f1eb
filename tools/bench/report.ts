// Appends a benchmark result to docs/BENCHMARKS.md with the machine, date and command.
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_MD = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/BENCHMARKS.md');

const HEADER = `# Benchmarks

Every row was produced by the command next to it, on the machine described in the row; re-run the
command to reproduce. Benchmarks append here; tests never assert on timings (they would flake).

`;

export function machine(): string {
  const cpu = cpus();
  // The load average says whether other work shared the cores during the run (it slows every row alike).
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}, load average ${loadavg()[0].toFixed(1)} at the end`;
}

export function appendSection(title: string, command: string, lines: string[]): void {
  if (!existsSync(BENCHMARKS_MD)) writeFileSync(BENCHMARKS_MD, HEADER);
  const date = new Date().toISOString().slice(0, 10);
  appendFileSync(BENCHMARKS_MD, `## ${title} (${date})\n\n- machine: ${machine()}\n- command: \`${command}\`\n\n${lines.join('\n')}\n\n`);
}
