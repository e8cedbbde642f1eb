// Which TF_/TFE_ functions the tfjs-node addon calls, and whether libtensorflow exports them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MissingSymbolsError, ToolMissingError } from './errors.ts';
import { run, tail } from './exec.ts';

/**
 * The C API functions called in the addon's sources (binding/*.cc, *.h): every `TF_x(` / `TFE_x(`
 * call, less the addon's own classes (TF_AutoStatus, …) and the TF_TString_* helpers, which are
 * static inline functions in the headers (tsl/platform/ctstring.h), not library symbols.
 */
export function requiredSymbols(sources: readonly string[]): string[] {
  const own = new Set<string>();
  const calls = new Set<string>();
  for (const src of sources) {
    for (const m of src.matchAll(/\b(?:class|struct)\s+(TFE?_[A-Za-z0-9_]+)/g)) own.add(m[1]);
    for (const m of src.matchAll(/\b(TFE?_[A-Za-z0-9_]+)\s*\(/g)) calls.add(m[1]);
  }
  return [...calls].filter((s) => !own.has(s) && !s.startsWith('TF_TString_')).sort();
}

/** Reads the addon's sources from a tfjs-node package directory. */
export function bindingSources(pkgDir: string): string[] {
  const dir = join(pkgDir, 'binding');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cc') || f.endsWith('.h'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

/** Symbol names from `nm` output, version suffixes (`@@tensorflow`) stripped. */
export function parseNm(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    const name = parts[parts.length - 1];
    if (parts.length >= 2 && name !== undefined && name !== '') names.push(name.replace(/@.*$/, ''));
  }
  return names;
}

async function nm(args: readonly string[], lib: string, nmBin: string): Promise<string[]> {
  const r = await run(nmBin, [...args, lib]);
  if (r.code === null && /ENOENT/.test(r.stderr)) throw new ToolMissingError(`${nmBin} not found: it checks the library's exports. Install binutils (apt-get install binutils).`);
  if (r.code !== 0) throw new ToolMissingError(`${nmBin} ${args.join(' ')} ${lib} failed (exit ${r.code}):\n${tail(r.stderr, 5)}`);
  return parseNm(r.stdout);
}

/** Every dynamic symbol the libraries define (`nm -D --defined-only`). */
export async function exportedSymbols(libs: readonly string[], nmBin = 'nm'): Promise<Set<string>> {
  const all = new Set<string>();
  for (const lib of libs) for (const s of await nm(['-D', '--defined-only'], lib, nmBin)) all.add(s);
  return all;
}

/** The TF_/TFE_ symbols a built object leaves undefined (`nm -D --undefined-only`). */
export async function undefinedTfSymbols(object: string, nmBin = 'nm'): Promise<string[]> {
  return (await nm(['-D', '--undefined-only'], object, nmBin)).filter((s) => /^TFE?_/.test(s)).sort();
}

/** Throws MissingSymbolsError listing every required symbol the libraries do not export. */
export function checkSymbols(required: readonly string[], exported: ReadonlySet<string>, libs: readonly string[]): void {
  const missing = required.filter((s) => !exported.has(s));
  if (missing.length > 0) throw new MissingSymbolsError(missing, libs);
}
