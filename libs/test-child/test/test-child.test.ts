import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tapCoverageVariables, tsxCommand } from '../mod.ts';

t.test('the variables tap uses to trace a child are the ones removed', async (t) => {
  const vars = tapCoverageVariables({ NODE_OPTIONS: 'x', _TAPJS_PROCESSINFO_ROOT_: 'y', PATH: '/bin' });
  t.ok(vars.includes('NODE_OPTIONS') && vars.includes('NODE_V8_COVERAGE') && vars.includes('_TAPJS_PROCESSINFO_ROOT_'));
  t.notOk(vars.includes('PATH'), 'everything else is kept');
});

t.test('a TypeScript child runs under tsx without tap coverage hooks, with its arguments and env', async (t) => {
  // Under tap this process has NODE_OPTIONS (the process-info import) and _TAPJS_* set: the child must not.
  t.ok(tapCoverageVariables().length > 2, 'running under tap, its variables are present here');
  const dir = mkdtempSync(join(tmpdir(), 'test-child-'));
  const script = join(dir, 'child.ts');
  writeFileSync(
    script,
    `const n: number = 2;\nconsole.log(JSON.stringify({ args: process.argv.slice(2), n, opts: process.env.NODE_OPTIONS ?? null, tap: Object.keys(process.env).filter((k) => k.startsWith('_TAPJS')), extra: process.env.EXTRA ?? null }));\n`,
  );
  const cmd = tsxCommand(script, ['a', '--b'], ['--no-warnings']);
  t.equal(cmd.command, 'env');
  const r = spawnSync(cmd.command, cmd.args, { encoding: 'utf8', env: { ...process.env, EXTRA: 'kept' } });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { args: ['a', '--b'], n: 2, opts: null, tap: [], extra: 'kept' });
});
