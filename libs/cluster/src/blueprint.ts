// The machine blueprint: a JSON or YAML file naming the machines a job may use. Our shape is
// `{ machines: [{ name, address, cores?, memoryGiB?, gpus?, energyEfficient?, labels?, ssh? }] }`;
// the thesis's shape `{ connections: [{ IP, GPUS, "energy efficient" }] }` is accepted too. A
// password anywhere is refused: agents are started by the user, or over ssh with keys.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { BlueprintError } from './errors.ts';

export interface Machine {
  /** A NATS subject token (letters, digits, '-', '_'): the agent answers on `cluster.node.<name>.*`. */
  readonly name: string;
  /** Host name or IP address. */
  readonly address: string;
  readonly cores?: number;
  readonly memoryGiB?: number;
  /** Number of GPUs (0: CPU only). */
  readonly gpus?: number;
  readonly energyEfficient?: boolean;
  readonly labels?: Readonly<Record<string, string>>;
  /** An ssh target (`user@host`) to start the agent with keys; never a password. */
  readonly ssh?: string;
}

export interface Blueprint {
  /** The file it came from (or `<inline>`). */
  readonly source: string;
  readonly machines: readonly Machine[];
}

const NAME = /^[-\w]+$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws when any key anywhere in `v` looks like a password (or a passphrase/secret). */
function refusePasswords(file: string, v: unknown, path: string): void {
  if (Array.isArray(v)) {
    v.forEach((x, i) => refusePasswords(file, x, `${path}[${i}]`));
    return;
  }
  if (!isObj(v)) return;
  for (const [k, x] of Object.entries(v)) {
    const here = path === '' ? k : `${path}.${k}`;
    if (/pass(word|phrase)?$|^pwd$|secret/i.test(k)) {
      throw new BlueprintError(
        file,
        here,
        'passwords are never read from a blueprint: start `npx nx serve node` on each machine yourself (systemd, a container), or give an `ssh` target that logs in with keys (docs/CLUSTER.md)',
      );
    }
    refusePasswords(file, x, here);
  }
}

/** A machine name from an address: dots and colons become '-', anything else not allowed becomes '_'. */
export function machineNameOf(address: string): string {
  return address.replace(/[.:]/g, '-').replace(/[^-\w]/g, '_');
}

class Fields {
  constructor(
    readonly file: string,
    readonly o: Obj,
    readonly path: string,
  ) {}

  fail(key: string, reason: string): never {
    throw new BlueprintError(this.file, `${this.path}.${key}`, reason);
  }

  str(key: string, required: true): string;
  str(key: string, required: false): string | undefined;
  str(key: string, required: boolean): string | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) {
      if (required) this.fail(key, 'is missing (a string is required)');
      return undefined;
    }
    if (typeof v !== 'string' || v.trim() === '') this.fail(key, `must be a non-empty string, got ${JSON.stringify(v)}`);
    return v.trim();
  }

  num(key: string, o: { integer?: boolean; min: number }): number | undefined {
    let v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) v = Number(v);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < o.min || (o.integer === true && !Number.isInteger(v))) {
      this.fail(key, `must be ${o.integer === true ? 'an integer' : 'a number'} >= ${o.min}, got ${JSON.stringify(this.o[key])}`);
    }
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    if (v === 1 || v === 0) return v === 1;
    if (typeof v === 'string' && /^(true|yes|y|1|false|no|n|0)$/i.test(v.trim())) return /^(true|yes|y|1)$/i.test(v.trim());
    this.fail(key, `must be true or false (also accepted: yes/no, 1/0), got ${JSON.stringify(v)}`);
  }

  labels(key: string): Record<string, string> | undefined {
    const v = this.o[key];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) this.fail(key, 'must be a map of label names to string values, e.g. {"zone": "a"}');
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') this.fail(`${key}.${k}`, `must be a string, got ${JSON.stringify(x)}`);
      out[k] = String(x);
    }
    return out;
  }
}

function machine(file: string, v: unknown, path: string): Machine {
  if (!isObj(v)) throw new BlueprintError(file, path, 'must be an object like {"name": "gpu-1", "address": "10.0.0.5"}');
  const f = new Fields(file, v, path);
  const known = new Set(['name', 'address', 'cores', 'memoryGiB', 'gpus', 'energyEfficient', 'labels', 'ssh']);
  for (const k of Object.keys(v)) if (!known.has(k)) f.fail(k, `unknown field; a machine takes ${[...known].join(', ')}`);
  const address = f.str('address', true);
  const name = f.str('name', false) ?? machineNameOf(address);
  if (!NAME.test(name)) f.fail('name', `'${name}' must be letters, digits, '-' or '_' (it is a NATS subject token)`);
  const ssh = f.str('ssh', false);
  if (ssh !== undefined && /:[^@]*@/.test(ssh)) f.fail('ssh', 'must not carry a password (user:password@host); use an ssh key');
  const cores = f.num('cores', { integer: true, min: 1 });
  const memoryGiB = f.num('memoryGiB', { min: 0 });
  const gpus = f.num('gpus', { integer: true, min: 0 });
  const energyEfficient = f.bool('energyEfficient');
  const labels = f.labels('labels');
  return {
    name,
    address,
    ...(cores !== undefined ? { cores } : {}),
    ...(memoryGiB !== undefined ? { memoryGiB } : {}),
    ...(gpus !== undefined ? { gpus } : {}),
    ...(energyEfficient !== undefined ? { energyEfficient } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(ssh !== undefined ? { ssh } : {}),
  };
}

/** The thesis's `{IP, GPUS, "energy efficient"}` entry as a machine. */
function connection(file: string, v: unknown, path: string): Machine {
  if (!isObj(v)) throw new BlueprintError(file, path, 'must be an object like {"IP": "10.0.0.5", "GPUS": 1, "energy efficient": false}');
  const f = new Fields(file, v, path);
  const address = f.str('IP', true);
  const gpus = f.num('GPUS', { integer: true, min: 0 });
  const energyEfficient = f.bool('energy efficient');
  return { name: machineNameOf(address), address, ...(gpus !== undefined ? { gpus } : {}), ...(energyEfficient !== undefined ? { energyEfficient } : {}) };
}

export type BlueprintFormat = 'json' | 'yaml';

/** The format a file's name says: `.yaml`/`.yml` are YAML, anything else JSON. */
export function blueprintFormatOf(file: string): BlueprintFormat {
  return /\.ya?ml$/i.test(file) ? 'yaml' : 'json';
}

function parseText(text: string, file: string, format: BlueprintFormat): unknown {
  try {
    // YAML: the core schema (yes/no stay strings, as in JSON; the fields accept them), duplicate keys are errors.
    return format === 'yaml' ? parseYaml(text, { uniqueKeys: true, prettyErrors: true }) : JSON.parse(text);
  } catch (err) {
    throw new BlueprintError(file, '(file)', `is not ${format === 'yaml' ? 'YAML' : 'JSON'} (${(err as Error).message.split('\n')[0]})`);
  }
}

/**
 * Parses and validates a blueprint's text (`file` names it in errors). The format is `file`'s
 * extension's (`.yaml`/`.yml`: YAML, else JSON) unless given; both are validated alike.
 */
export function parseBlueprint(text: string, file = '<inline>', format: BlueprintFormat = blueprintFormatOf(file)): Blueprint {
  const parsed = parseText(text, file, format);
  refusePasswords(file, parsed, '');
  if (!isObj(parsed)) throw new BlueprintError(file, '(top level)', 'must be an object with a "machines" array (or the thesis\'s "connections" array)');
  let machines: Machine[];
  if (parsed.machines !== undefined) {
    if (!Array.isArray(parsed.machines)) throw new BlueprintError(file, 'machines', 'must be an array of machines');
    machines = parsed.machines.map((m, i) => machine(file, m, `machines[${i}]`));
  } else if (parsed.connections !== undefined) {
    if (!Array.isArray(parsed.connections)) throw new BlueprintError(file, 'connections', 'must be an array of {IP, GPUS, "energy efficient"}');
    machines = parsed.connections.map((m, i) => connection(file, m, `connections[${i}]`));
  } else {
    throw new BlueprintError(file, 'machines', 'is missing: a blueprint is {"machines": [{"name": …, "address": …}, …]} (or the thesis\'s {"connections": [{"IP": …}]})');
  }
  if (machines.length === 0) throw new BlueprintError(file, parsed.machines !== undefined ? 'machines' : 'connections', 'is empty: name at least one machine');
  const seen = new Map<string, number>();
  machines.forEach((m, i) => {
    const prev = seen.get(m.name);
    if (prev !== undefined) throw new BlueprintError(file, `machines[${i}].name`, `'${m.name}' is also machine ${prev}: names must be unique`);
    seen.set(m.name, i);
  });
  return { source: file, machines };
}

/** Reads and parses a blueprint file (JSON, or YAML when it is named .yaml/.yml). */
export function loadBlueprint(path: string): Blueprint {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BlueprintError(path, '(file)', `cannot be read (${(err as Error).message})`);
  }
  return parseBlueprint(text, path);
}
