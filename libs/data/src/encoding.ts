// Contiguous id encoding. Loaders encode raw ids (MovieLens numbers, strings in generic CSVs) to
// 0…n-1 while streaming, so embedding tables can be indexed directly; IdMap keeps the way back.
import { DataError } from './errors.ts';

export type RawId = number | string;

export class IdMap {
  readonly #toIndex = new Map<RawId, number>();
  readonly #toRaw: RawId[] = [];

  /** Index of a raw id, assigning the next free index to a new one. */
  encode(raw: RawId): number {
    let i = this.#toIndex.get(raw);
    if (i === undefined) {
      i = this.#toRaw.length;
      this.#toIndex.set(raw, i);
      this.#toRaw.push(raw);
    }
    return i;
  }

  /** Index of a known raw id, or undefined. */
  get(raw: RawId): number | undefined {
    return this.#toIndex.get(raw);
  }

  decode(index: number): RawId {
    const raw = this.#toRaw[index];
    if (raw === undefined) throw new DataError(`index ${index} is not in this id map (size ${this.size})`);
    return raw;
  }

  get size(): number {
    return this.#toRaw.length;
  }

  toJSON(): RawId[] {
    return [...this.#toRaw];
  }

  static fromJSON(raws: readonly RawId[]): IdMap {
    const m = new IdMap();
    for (const r of raws) {
      if (typeof r !== 'number' && typeof r !== 'string') throw new DataError(`id map entries must be numbers or strings, got ${typeof r}`);
      if (m.get(r) !== undefined) throw new DataError(`id map has a duplicate id ${String(r)}`);
      m.encode(r);
    }
    return m;
  }

  /** A map over a subset of indices (after filtering), with the remapping old index → new index (-1 = dropped). */
  compact(keep: Uint8Array): { map: IdMap; remap: Int32Array } {
    const map = new IdMap();
    const remap = new Int32Array(this.size).fill(-1);
    for (let i = 0; i < this.size; i++) if (keep[i] === 1) remap[i] = map.encode(this.#toRaw[i]);
    return { map, remap };
  }
}
