// Preprocessed datasets as Arrow IPC files: the same columns as the wire's ratings batches
// (user:int32, item:int32, rating:float32, plus timestamp:float64 when known) and the id maps in
// the schema metadata, so a preprocessed file can be opened by pyarrow/pandas as well.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { Field, Float32, Float64, Int32, Schema, Table, makeData, RecordBatch, Struct, tableFromIPC, tableToIPC } from 'apache-arrow';
import { IdMap, type RawId } from './encoding.ts';
import { DataError, FormatError } from './errors.ts';
import type { Ratings } from './types.ts';

export interface RatingsFile {
  readonly ratings: Ratings;
  readonly users?: IdMap;
  readonly items?: IdMap;
  /** Free-form provenance (source file, split, seed, …). */
  readonly meta?: Readonly<Record<string, string>>;
}

const USERS_KEY = 'actorflow.users';
const ITEMS_KEY = 'actorflow.items';
const META_KEY = 'actorflow.meta';

export function saveRatingsArrow(path: string, f: RatingsFile): void {
  const r = f.ratings;
  const fields: Field[] = [new Field('user', new Int32(), false), new Field('item', new Int32(), false), new Field('rating', new Float32(), false)];
  if (r.timestamp !== undefined) fields.push(new Field('timestamp', new Float64(), false));
  const metadata = new Map<string, string>();
  if (f.users !== undefined) metadata.set(USERS_KEY, JSON.stringify(f.users.toJSON()));
  if (f.items !== undefined) metadata.set(ITEMS_KEY, JSON.stringify(f.items.toJSON()));
  if (f.meta !== undefined) metadata.set(META_KEY, JSON.stringify(f.meta));
  const schema = new Schema(fields, metadata);
  const col = (type: Int32 | Float32 | Float64, data: Int32Array | Float32Array | Float64Array) => makeData({ type, length: r.length, data } as never);
  const children = [col(new Int32(), r.user), col(new Int32(), r.item), col(new Float32(), r.rating)];
  if (r.timestamp !== undefined) children.push(col(new Float64(), r.timestamp));
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: r.length, nullCount: 0, children }));
  writeFileSync(path, tableToIPC(new Table([batch]), 'file'));
}

export function loadRatingsArrow(path: string): RatingsFile {
  if (!existsSync(path)) throw new DataError(`no such file: ${path}`);
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(path));
  } catch (err) {
    throw new FormatError(`${path} is not an Arrow IPC file (${(err as Error).message})`);
  }
  const want: [string, string][] = [
    ['user', 'Int32'],
    ['item', 'Int32'],
    ['rating', 'Float32'],
  ];
  const names = table.schema.fields.map((f) => `${f.name}:${String(f.type)}`);
  for (const [name, type] of want) {
    const field = table.schema.fields.find((f) => f.name === name);
    if (field === undefined || String(field.type) !== type) {
      throw new FormatError(`${path}: expected a ratings file with user:Int32, item:Int32, rating:Float32 (+ timestamp:Float64); it has ${names.join(', ')}`);
    }
  }
  const ts = table.schema.fields.find((f) => f.name === 'timestamp');
  if (ts !== undefined && String(ts.type) !== 'Float64') throw new FormatError(`${path}: timestamp must be Float64, is ${String(ts.type)}`);
  const column = <T extends Int32Array | Float32Array | Float64Array>(name: string): T => table.getChild(name)?.toArray() as T;
  const ratings: Ratings = {
    user: column<Int32Array>('user'),
    item: column<Int32Array>('item'),
    rating: column<Float32Array>('rating'),
    ...(ts !== undefined ? { timestamp: column<Float64Array>('timestamp') } : {}),
    length: table.numRows,
  };
  const md = table.schema.metadata;
  const map = (key: string): IdMap | undefined => {
    const v = md.get(key);
    if (v === undefined) return undefined;
    try {
      return IdMap.fromJSON(JSON.parse(v) as RawId[]);
    } catch (err) {
      throw new FormatError(`${path}: metadata ${key} is not a valid id map (${(err as Error).message})`);
    }
  };
  const users = map(USERS_KEY);
  const items = map(ITEMS_KEY);
  const meta = md.get(META_KEY);
  return {
    ratings,
    ...(users !== undefined ? { users } : {}),
    ...(items !== undefined ? { items } : {}),
    ...(meta !== undefined ? { meta: JSON.parse(meta) as Record<string, string> } : {}),
  };
}
