// The WebAssembly SIMD kernels (kernels.wat) and the memory they work in. Bit-identical to the
// JavaScript loops they replace (same operations, order and roundings; see kernels.wat), and
// optional: where WebAssembly SIMD is missing, or `ACTORFLOW_WASM_KERNELS=0`, every caller runs
// its JavaScript loop instead.
//
// Memory: the batch kernel (mse) copies its inputs into one growable scratch memory. The
// optimizer kernel (adam) must update a table's rows in place, so a large table created by
// createTable lives in an *arena*: a fixed-size WebAssembly.Memory that holds the table's values
// at offset 0, room for one optimizer's two moment arrays, and a gradient scratch area. An arena
// never grows, so the Float32Array views on it (the table's `data`, the optimizer's state) stay
// valid for the table's lifetime.
import { KERNELS_WASM_BASE64 } from './kernels.wasm.ts';

// The slice of the WebAssembly JS API used here (the project's TypeScript libs have no DOM types).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = object;
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Instance: new (module: WasmModule, imports: object) => { readonly exports: unknown };
  readonly Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

interface Exports {
  mse(
    n: number,
    d: number,
    mu: number,
    scale: number,
    pu: number,
    pi: number,
    bu: number,
    bi: number,
    P: number,
    Q: number,
    Bu: number,
    Bi: number,
    target: number,
    gP: number,
    gQ: number,
    gBu: number,
    gBi: number,
    out: number,
  ): void;
  adam(rows: number, nrows: number, d: number, w: number, m: number, v: number, g: number, c: number, lr: number, l2: number, beta1: number, beta2: number, b1: number, b2: number, eps: number): void;
}

const PAGE = 65_536;
const MAX_PAGES = 32_768; // 2 GiB per memory: past that tables stay plain Float32Arrays

let compiled: WasmModule | null | undefined;

function wasmModule(): WasmModule | null {
  if (compiled !== undefined) return compiled;
  if (WA === undefined || process.env.ACTORFLOW_WASM_KERNELS === '0') return (compiled = null);
  try {
    compiled = new WA.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
  } catch {
    compiled = null; // no WebAssembly SIMD here: the JavaScript loops run
  }
  return compiled;
}

/** Whether the WebAssembly kernels run in this process (false: the JavaScript fallbacks). */
export function wasmKernelsAvailable(): boolean {
  return wasmModule() !== null;
}

function instantiate(mem: WasmMemory): Exports | null {
  const mod = wasmModule();
  if (mod === null || WA === undefined) return null;
  return new WA.Instance(mod, { env: { mem } }).exports as unknown as Exports;
}

const align = (bytes: number): number => (bytes + 15) & ~15;

/** Growable scratch memory for the batch kernels; views are re-made after every growth. */
class Scratch {
  readonly #mem: WasmMemory;
  readonly #k: Exports | null;
  #top = 0;

  constructor(api: WasmApi) {
    this.#mem = new api.Memory({ initial: 16 });
    this.#k = instantiate(this.#mem);
  }
  get kernels(): Exports | null {
    return this.#k;
  }

  /** Starts a new layout of `bytes` in total; returns false when the memory cannot hold it. */
  reset(bytes: number): boolean {
    const need = Math.ceil(bytes / PAGE);
    const have = this.#mem.buffer.byteLength / PAGE;
    if (need > MAX_PAGES) return false;
    if (need > have) this.#mem.grow(need - have);
    this.#top = 0;
    return true;
  }

  /** Reserves `bytes` (16-aligned) and returns their offset. */
  take(bytes: number): number {
    const at = this.#top;
    this.#top = align(at + bytes);
    return at;
  }

  get buffer(): ArrayBuffer {
    return this.#mem.buffer;
  }
}

let scratch: Scratch | undefined;

/** The scratch memory, or undefined without WebAssembly SIMD. */
export function batchScratch(): Scratch | undefined {
  if (wasmModule() === null || WA === undefined) return undefined;
  scratch ??= new Scratch(WA);
  return scratch;
}

/** Tables smaller than this stay plain Float32Arrays (their optimizer steps are cheap anyway). */
export const ARENA_MIN_VALUES = 16_384;

/** A table's values, one optimizer's moments (m, v) and gradient scratch, in one fixed memory. */
export class Arena {
  readonly data: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Gradient rows (rows × dim), the touched row ids, and two bias corrections (f64) per row. */
  readonly grads: Float32Array;
  readonly rowIds: Int32Array;
  readonly corrections: Float64Array;
  readonly kernels: Exports;
  /** The optimizer slot that uses m and v (one per arena; others keep arrays of their own). */
  owner: object | undefined;

  private constructor(mem: WasmMemory, k: Exports, values: number, rows: number) {
    const b = align(values * 4);
    this.kernels = k;
    this.data = new Float32Array(mem.buffer, 0, values);
    this.m = new Float32Array(mem.buffer, b, values);
    this.v = new Float32Array(mem.buffer, 2 * b, values);
    this.grads = new Float32Array(mem.buffer, 3 * b, values);
    this.rowIds = new Int32Array(mem.buffer, 4 * b, rows);
    this.corrections = new Float64Array(mem.buffer, 4 * b + align(rows * 4), 2 * rows);
  }

  /** An arena for a rows × dim table, or undefined (small table, too large, or no WebAssembly SIMD). */
  static create(rows: number, dim: number): Arena | undefined {
    const values = rows * dim;
    if (values < ARENA_MIN_VALUES || wasmModule() === null || WA === undefined) return undefined;
    const bytes = 4 * align(values * 4) + align(rows * 4) + 16 * rows;
    const pages = Math.ceil(bytes / PAGE);
    if (pages > MAX_PAGES) return undefined;
    let mem: WasmMemory;
    try {
      mem = new WA.Memory({ initial: pages, maximum: pages });
    } catch {
      return undefined; // out of address space: a plain table still works
    }
    const k = instantiate(mem);
    return k === null ? undefined : new Arena(mem, k, values, rows);
  }

  /** Byte offsets of the views, for the kernels. */
  get offsets(): { data: number; m: number; v: number; grads: number; rowIds: number; corrections: number } {
    return { data: this.data.byteOffset, m: this.m.byteOffset, v: this.v.byteOffset, grads: this.grads.byteOffset, rowIds: this.rowIds.byteOffset, corrections: this.corrections.byteOffset };
  }
}

const arenas = new WeakMap<Float32Array, Arena>();

/** The arena whose table values are `data`, if any. */
export function arenaOf(data: Float32Array): Arena | undefined {
  return arenas.get(data);
}

/** A zeroed rows × dim Float32Array, inside an arena when the table is large enough. */
export function allocTableData(rows: number, dim: number): Float32Array {
  const a = Arena.create(rows, dim);
  if (a === undefined) return new Float32Array(rows * dim);
  arenas.set(a.data, a);
  return a.data;
}
