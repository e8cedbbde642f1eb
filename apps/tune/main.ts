// `npx nx run tune -- --model mf --grid dim=16,64 --grid l2=0.0002,0.0005 [--random N] [--parallel N] …`:
// a grid or random search over launcher jobs (src/search.ts, src/trials.ts, src/report.ts).
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTuneFlags, TuneFlagError, tuneUsage, unknownJobFlags } from './src/search.ts';
import { resultsTable, summarize, TuneResultError, writeTuneJson } from './src/report.ts';
import { runTrials, TuneJobUsageError } from './src/trials.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const log = (line: string): void => console.log(line);

let plan;
try {
  plan = parseTuneFlags(process.argv.slice(2), process.env);
} catch (err) {
  if (err instanceof TuneFlagError) {
    console.error(`tune: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
if (plan === 'help') {
  console.log(tuneUsage);
  process.exit(0);
}

// The job flags, checked against the launcher's own list before any job starts.
const help = spawnSync(process.execPath, ['--import', 'tsx', resolve(root, 'apps/job/main.ts'), '--help'], { cwd: root, encoding: 'utf8' });
const unknown = help.status === 0 ? unknownJobFlags(plan.jobArgs, help.stdout) : [];
if (unknown.length > 0) {
  console.error(`tune: unknown job flag ${unknown.join(', ')}; tune's own flags are in --help, the jobs' in npx nx run job -- --help`);
  process.exit(2);
}

const interrupt = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => interrupt.abort(sig));

const out = resolve(root, plan.out);
log(`tune ${plan.id}: ${plan.settings.length} setting(s) of ${plan.grid.map((g) => `${g.key} ∈ {${g.values.join(', ')}}`).join(' × ')}, ${plan.parallel} at a time; jobs in ${out}`);
try {
  const results = await runTrials(plan, { root, jobMain: resolve(root, 'apps/job/main.ts'), env: process.env, log, signal: interrupt.signal });
  const summary = summarize(plan, results);
  log(`\n${resultsTable(plan, summary.trials, summary.metric)}\n`);
  if (summary.best !== undefined) {
    const shown = Object.entries(summary.best.setting)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    log(`best: ${shown} → ${summary.metric ?? ''} ${summary.best.value.toFixed(4)}${summary.best.std !== undefined ? ` ± ${summary.best.std.toFixed(4)}` : ''} (${summary.best.job})`);
    log(`rerun it: ${summary.best.command}`);
  } else log('no job finished: see the logs in ' + resolve(out, 'logs'));
  writeTuneJson(resolve(out, 'tune.json'), summary);
  log(`results in ${resolve(out, 'tune.json')}`);
  if (interrupt.signal.aborted) process.exitCode = 130;
  else if (summary.best === undefined) process.exitCode = 1;
} catch (err) {
  if (err instanceof TuneJobUsageError) {
    console.error(`tune: job ${err.job} refused its flags, so every job would: ${err.message}`);
    process.exitCode = 2;
  } else if (err instanceof TuneResultError) {
    console.error(`tune: ${err.message}`);
    process.exitCode = 2;
  } else throw err;
}
