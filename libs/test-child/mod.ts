// Tests start our entry points (apps' main.ts, CLIs) as real child processes. Under tap, a child
// inherits tap's process-info hooks (NODE_OPTIONS and the _TAPJS_* variables) and so reports V8
// coverage of the files it loads. tsx compiles with minified whitespace (a whole file on ~3 lines),
// and merging that coverage with the test process's own (ts-node, line for line) gives a per-file
// total that depends on which coverage file tap reads first: the same tests measured 137 lines of
// apps/recommend on one run and 2 on the next. Children therefore run without those hooks; a
// project's coverage is what its tests exercise in-process, the same on every run.
import { execPath } from 'node:process';

/** The environment variables through which tap makes a child process report coverage. */
export function tapCoverageVariables(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['NODE_OPTIONS', 'NODE_V8_COVERAGE', ...Object.keys(env).filter((k) => k.startsWith('_TAPJS'))];
}

/** A command line for `spawn`/`spawnSync` that runs `node [nodeArgs] --import tsx script ...args`
 * with tap's coverage variables removed. It goes through `env -u`, because tap's process-info hook
 * patches `spawn` in the test process and would put them back into an `env` option. */
export function tsxCommand(script: string, args: readonly string[] = [], nodeArgs: readonly string[] = []): { command: string; args: string[] } {
  const unset = tapCoverageVariables().flatMap((k) => ['-u', k]);
  return { command: 'env', args: [...unset, execPath, ...nodeArgs, '--import', 'tsx', script, ...args] };
}
