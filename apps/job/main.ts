// `npx nx run job -- …`: one command that runs a whole local training job (see src/launch.ts).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobFlagError, jobUsage, parseJobFlags } from './src/flags.ts';
import { launchJob } from './src/launch.ts';
import { formatMetrics } from './src/progress.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const log = (line: string): void => console.log(line);

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

try {
  const result = await launchJob(plan, root, log);
  log(
    `\ndone in ${result.seconds.toFixed(1)} s: ${formatMetrics(result.metrics)}` +
      (result.noiseFloorRmse !== undefined ? ` (noise floor RMSE of the synthetic data: ${result.noiseFloorRmse.toFixed(4)})` : ''),
  );
  log(`metrics, model and logs in ${result.out}`);
  console.log(JSON.stringify({ metrics: result.metrics, noiseFloorRmse: result.noiseFloorRmse, out: result.out }));
} catch (err) {
  console.error(`job failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
