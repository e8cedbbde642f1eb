// Shape checks for decoded messages. Hand-written rather than a schema library: the checks we
// need are few (numbers, strings, typed-array kinds and length relations) and must produce
// DecodeErrors that name the field.
import { DecodeError } from './errors.ts';

export type Obj = Record<string, unknown>;

export class Check {
  constructor(readonly kind: string) {}

  fail(reason: string): never {
    throw new DecodeError(this.kind, reason);
  }

  obj(v: unknown, path = 'message'): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) this.fail(`${path} is not a map`);
    return v as Obj;
  }

  str(o: Obj, key: string): string {
    const v = o[key];
    if (typeof v !== 'string') this.fail(`field '${key}' must be a string`);
    return v;
  }

  optStr(o: Obj, key: string): string | undefined {
    return o[key] === undefined || o[key] === null ? undefined : this.str(o, key);
  }

  num(o: Obj, key: string): number {
    const v = o[key];
    if (typeof v !== 'number') this.fail(`field '${key}' must be a number`);
    return v;
  }

  int(o: Obj, key: string, min = 0): number {
    const v = this.num(o, key);
    if (!Number.isInteger(v) || v < min) this.fail(`field '${key}' must be an integer >= ${min}, got ${v}`);
    return v;
  }

  bool(o: Obj, key: string): boolean {
    const v = o[key];
    if (typeof v !== 'boolean') this.fail(`field '${key}' must be a boolean`);
    return v;
  }

  optBool(o: Obj, key: string): boolean | undefined {
    return o[key] === undefined || o[key] === null ? undefined : this.bool(o, key);
  }

  f32(v: unknown, path: string): Float32Array {
    if (!(v instanceof Float32Array)) this.fail(`${path} must be a Float32Array`);
    return v;
  }

  i32(v: unknown, path: string): Int32Array {
    if (!(v instanceof Int32Array)) this.fail(`${path} must be an Int32Array`);
    return v;
  }

  u8(v: unknown, path: string): Uint8Array {
    if (!(v instanceof Uint8Array)) this.fail(`${path} must be a Uint8Array`);
    return v;
  }

  strArray(v: unknown, path: string): string[] {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) this.fail(`${path} must be an array of strings`);
    return v as string[];
  }

  record<T>(v: unknown, path: string, each: (x: unknown, key: string) => T): Record<string, T> {
    const o = this.obj(v, path);
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(o)) out[k] = each(x, `${path}.${k}`);
    return out;
  }
}
