// Saving and loading tables (with their optimizer state) as one msgpack file: typed arrays stay
// binary, and the file is self-describing (names, shapes, optimizer config).
import { readFileSync, writeFileSync } from 'node:fs';
import { decodeMsg, encodeMsg } from '@actorflow/protocol';
import { EmbeddingError, type EmbeddingTable } from './table.ts';
import { RowOptimizer, type OptimizerConfig } from './optimizers.ts';

const FORMAT = 'actorflow.params.v1';

export interface ParamsFile {
  readonly tables: readonly EmbeddingTable[];
  readonly dense: Readonly<Record<string, Float32Array>>;
  readonly optimizer?: RowOptimizer;
  readonly meta?: Readonly<Record<string, string | number>>;
}

export function saveParams(path: string, p: ParamsFile): void {
  writeFileSync(
    path,
    encodeMsg({
      format: FORMAT,
      tables: p.tables.map((t) => ({ name: t.name, rows: t.rows, dim: t.dim, data: t.data })),
      dense: p.dense,
      ...(p.optimizer !== undefined ? { optimizer: { config: p.optimizer.config, state: p.optimizer.state() } } : {}),
      meta: p.meta ?? {},
    }),
  );
}

export function loadParams(path: string): ParamsFile {
  let raw: unknown;
  try {
    raw = decodeMsg(readFileSync(path), 'params file');
  } catch (err) {
    throw new EmbeddingError(`${path} is not a parameters file: ${(err as Error).message}`);
  }
  const o = raw as {
    format?: unknown;
    tables?: unknown;
    dense?: unknown;
    optimizer?: { config: OptimizerConfig; state: Parameters<RowOptimizer['loadState']>[0] };
    meta?: Record<string, string | number>;
  };
  if (o.format !== FORMAT || !Array.isArray(o.tables)) throw new EmbeddingError(`${path}: not an ${FORMAT} file`);
  const tables = (o.tables as { name: string; rows: number; dim: number; data: Float32Array }[]).map((t) => {
    if (!(t.data instanceof Float32Array) || t.data.length !== t.rows * t.dim) throw new EmbeddingError(`${path}: table ${t.name} is malformed`);
    return { name: t.name, rows: t.rows, dim: t.dim, data: t.data };
  });
  let optimizer: RowOptimizer | undefined;
  if (o.optimizer !== undefined) {
    optimizer = new RowOptimizer(o.optimizer.config);
    optimizer.loadState(o.optimizer.state);
  }
  return { tables, dense: (o.dense ?? {}) as Record<string, Float32Array>, ...(optimizer !== undefined ? { optimizer } : {}), ...(o.meta !== undefined ? { meta: o.meta } : {}) };
}
