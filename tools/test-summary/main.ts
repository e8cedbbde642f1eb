// Prints one closing line for the whole test run ("N passed, N failed") from the TAP results tap
// leaves in every project's .tap/test-results, so CI logs end with a single verdict.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function* tapFiles(dir: string): Generator<string> {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* tapFiles(p);
    else if (name.endsWith('.tap')) yield p;
  }
}

const projects = [root, ...['libs', 'apps', 'tools'].flatMap((d) => (existsSync(join(root, d)) ? readdirSync(join(root, d)).map((p) => join(root, d, p)) : []))];
let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];
for (const project of projects) {
  for (const file of tapFiles(join(project, '.tap', 'test-results'))) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*(not )?ok \d+( - [^#]*)?(#\s*(SKIP|TODO))?/i.exec(line);
      if (m === null || /^\s*(not )?ok \d+ - [^#]*\.test\.ts/.test(line)) continue; // count assertions, not files
      if (m[3] !== undefined) skipped++;
      else if (m[1] !== undefined) {
        failed++;
        if (failures.length < 20) failures.push(`${file.replace(`${root}/`, '')}: ${line.trim()}`);
      } else passed++;
    }
  }
}
if (failures.length > 0) console.log(`failures:\n  ${failures.join('\n  ')}`);
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
