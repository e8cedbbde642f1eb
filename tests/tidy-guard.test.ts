// Guard for the tf.tidy pathology (docs/BENCHMARKS.md): tidy walks whatever its callback returns,
// and walks a typed array element by element — 11.2 s of a 13.7 s MF epoch. So no tidy callback
// anywhere in the repository may read tensors back (dataSync / arraySync / data / array) or build
// typed arrays; return tensors and read them outside, as @actorflow/engine's readTidy does.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const root = join(import.meta.dirname, '..');
const READS = new Set(['dataSync', 'arraySync', 'data', 'array', 'bufferSync', 'buffer']);
const TYPED = /^(Float32|Float64|Int32|Uint8|Int16|Uint16|Int8|Uint32)Array$/;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every read or typed-array construction inside the callback of a `*.tidy(...)` call. */
export function tidyViolations(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const inside = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && READS.has(node.expression.name.text)) {
      found.push(`${relative(root, file)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}: .${node.expression.name.text}() inside tf.tidy`);
    }
    if ((ts.isNewExpression(node) || ts.isCallExpression(node)) && typedName(node.expression) !== undefined) {
      found.push(`${relative(root, file)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${typedName(node.expression)} built inside tf.tidy`);
    }
    ts.forEachChild(node, inside);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === 'tidy') {
      for (const a of node.arguments) if (ts.isArrowFunction(a) || ts.isFunctionExpression(a)) inside(a.body);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function typedName(e: ts.Expression): string | undefined {
  if (ts.isIdentifier(e) && TYPED.test(e.text)) return e.text;
  if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression) && TYPED.test(e.expression.text)) return `${e.expression.text}.${e.name.text}`;
  return undefined;
}

t.test('no tf.tidy callback in libs/, apps/, tools/ or tests/ reads tensors back or builds typed arrays', async (t) => {
  const files = ['libs', 'apps', 'tools', 'tests'].flatMap((d) => sources(join(root, d)));
  t.ok(files.length > 50, `${files.length} sources scanned`);
  const all = files.flatMap((f) => tidyViolations(f, readFileSync(f, 'utf8')));
  t.same(all, [], 'use readTidy from @actorflow/engine (return tensors from the tidy, read them outside)');
});

t.test('the guard catches the pathology', async (t) => {
  const bad = `const out = tf.tidy(() => { const g = tf.grads(f)(x); return { loss: v.dataSync()[0], g: g.map((a) => Float32Array.from(a.dataSync())) }; });`;
  t.equal(tidyViolations(join(root, 'x.ts'), bad).length, 3, 'two reads and one typed array');
  t.same(tidyViolations(join(root, 'x.ts'), `const y = readTidy(tf, () => tf.add(a, b)); const z = y.slice();`), []);
  t.same(tidyViolations(join(root, 'x.ts'), `const q = tf.tidy(function () { return tf.sum(a).arraySync(); });`).length, 1);
});
