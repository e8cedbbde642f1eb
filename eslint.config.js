// ESLint flat config for the whole workspace: typescript-eslint's recommended rules (not the
// type-checked set: tsc already runs as `typecheck`, and typed linting would double the CPU) plus
// the module boundaries of the developers' guide.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;

/** Package names of the projects under one workspace folder (apps, libs, tools). */
function packagesIn(folder) {
  return readdirSync(join(root, folder))
    .filter((d) => existsSync(join(root, folder, d, 'package.json')))
    .map((d) => JSON.parse(readFileSync(join(root, folder, d, 'package.json'), 'utf8')).name);
}
const apps = packagesIn('apps');
const tools = packagesIn('tools');

/** The nearest folder at or above `dir` that holds a package.json (a project, or the root). */
function packageRootOf(dir) {
  for (let d = dir; d.startsWith(root); d = dirname(d)) if (existsSync(join(d, 'package.json'))) return d;
  return root;
}

/**
 * boundaries/no-relative-cross-package: a relative import must stay inside its own package.
 * Another package is reached through its name and public entry (`@actorflow/x` or
 * `@actorflow/x/internal`), never by `../../other/src/...`.
 */
const noRelativeCrossPackage = {
  meta: {
    type: 'problem',
    docs: { description: 'Relative imports must not leave their package; import other packages by name.' },
    messages: {
      leaves: "'{{source}}' reaches into {{target}} from {{own}}; import it by its package name (its mod.ts or internal_mod.ts) instead.",
    },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const own = packageRootOf(dirname(file));
    function check(node) {
      const source = node?.value;
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = resolve(dirname(file), source);
      const targetRoot = packageRootOf(dirname(target));
      if (targetRoot !== own && !(target + sep).startsWith(own + sep)) {
        context.report({ node, messageId: 'leaves', data: { source, target: relative(root, targetRoot) || '.', own: relative(root, own) || '.' } });
      }
    }
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => n.source.type === 'Literal' && check(n.source),
    };
  },
};

/** Bare imports of another package only through its public entries. */
const publicEntriesOnly = {
  group: ['@actorflow/*/**', '!@actorflow/*/internal'],
  message: "Import an @actorflow package through its public entry only: '@actorflow/x' (mod.ts) or '@actorflow/x/internal' (internal_mod.ts).",
};
const restrictedImports = (...extra) => ['error', { patterns: [publicEntriesOnly, ...extra] }];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/.tap/**', '**/coverage/**', '**/out/**', '**/.nx/**', '**/.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    plugins: { boundaries: { rules: { 'no-relative-cross-package': noRelativeCrossPackage } } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      'boundaries/no-relative-cross-package': 'error',
      'no-restricted-imports': restrictedImports(),
      // Unused bindings are errors, except the conventional `_`-prefixed ones (ignored parameters,
      // destructured rests) the code uses on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // The monitor draws in the terminal: matching ANSI escape sequences (\x1b[...m) is its job.
    files: ['apps/monitor/**/*.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    // Libs are below apps and tools: they never import them.
    files: ['libs/**/*.ts'],
    rules: {
      'no-restricted-imports': restrictedImports({ group: [...apps, ...tools], message: 'A lib never imports an app or a tool; move the shared code into a lib.' }),
    },
  },
  {
    // Apps stay thin and independent: each imports libs, never another app.
    files: ['apps/**/*.ts'],
    rules: {
      'no-restricted-imports': restrictedImports({ group: apps, message: 'An app never imports another app; move the shared code into a lib.' }),
    },
  },
);
