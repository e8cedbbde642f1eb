// `npx nx run job -- …`: one command that runs a whole local training job (see src/launch.ts).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobFlagError, jobUsage, parseJobFlags, parsePrintNatsConfig } from './src/flags.ts';
import { generateRoleCredentials, printNatsConfig } from '@actorflow/bus';
import { JobInterruptedError, launchJob } from './src/launch.ts';
import { formatMetrics } from './src/progress.ts';
import { runFolds } from './src/folds.ts';
import { describeRecommendedEarlyStop } from './src/early-stop.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const log = (line: string): void => console.log(line);

// --print-nats-config [--job ID] [--trainers N]: the per-role (and per-rank) users and permissions for a cluster of your own (docs/SECURITY.md).
let printConfig;
try {
  printConfig = parsePrintNatsConfig(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof JobFlagError)) throw err;
  console.error(`job: ${err.message}`);
  process.exit(2);
}
if (printConfig !== undefined) {
  const { job, trainers, nodes } = printConfig;
  process.stdout.write(printNatsConfig(job, generateRoleCredentials(job, { ...(trainers !== undefined ? { trainerRanks: trainers } : {}), ...(nodes !== undefined ? { nodes } : {}) })));
  process.exit(0);
}

let plan;
try {
  plan = parseJobFlags(process.argv.slice(2), process.env);
} catch (err) {
  if (err instanceof JobFlagError) {
    console.error(`job: ${err.message}`);
    process.exit(2);
  }
  throw err;
}
if (plan === 'help') {
  console.log(jobUsage);
  process.exit(0);
}

// SIGINT/SIGTERM: a last checkpoint, every actor stopped (SIGTERM, then SIGKILL), exit 130/143.
const interrupt = new AbortController();
const EXIT_CODES: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupt.signal.aborted) {
      console.error(`job: second ${sig}: exiting now`);
      process.exit(EXIT_CODES[sig]);
    }
    interrupt.abort(sig);
  });
}

// The model's recommended early stopping (none of --epochs, --validation, --early-stop given): say so, and how to turn it off.
if (plan.recommendedEarlyStop !== undefined) log(describeRecommendedEarlyStop(plan.recommendedEarlyStop));

try {
  // --folds all: every fold of --split kfold:K as its own job, then mean ± std per metric (src/folds.ts).
  const folds = plan.folds;
  const result = folds !== undefined ? await runFolds({ ...plan, folds }, root, log, { signal: interrupt.signal }, launchJob) : await launchJob(plan, root, log, { signal: interrupt.signal });
  log(
    `\ndone in ${result.seconds.toFixed(1)} s: ${formatMetrics(result.metrics)}` +
      (result.noiseFloorRmse !== undefined ? ` (noise floor RMSE of the synthetic data: ${result.noiseFloorRmse.toFixed(4)})` : ''),
  );
  log(`metrics, model and logs in ${result.out}`);
  console.log(JSON.stringify({ metrics: result.metrics, noiseFloorRmse: result.noiseFloorRmse, out: result.out }));
} catch (err) {
  if (err instanceof JobInterruptedError) {
    console.error(`job stopped: ${err.message}; resume with: npx nx run job -- --resume ${resolve(root, plan.out)}`);
    process.exitCode = EXIT_CODES[err.signal] ?? 1;
  } else {
    console.error(`job failed: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
