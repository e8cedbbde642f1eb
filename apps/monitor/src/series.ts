// A bounded history of (step, value) points. Up to `maxPoints` points are kept as they come;
// beyond that, neighbouring points are merged in pairs (mean value, later step) and from then on
// every `stride` incoming points become one, so a long run keeps an even, bounded sampling of its
// whole history. The page's script implements the same rule (src/page.ts).

export type Point = readonly [step: number, value: number];

export const DEFAULT_MAX_POINTS = 5000;

export class Series {
  readonly maxPoints: number;
  #points: Point[] = [];
  #stride = 1;
  #pendingN = 0;
  #pendingSum = 0;
  #pendingStep = 0;
  #received = 0;

  constructor(maxPoints = DEFAULT_MAX_POINTS) {
    if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new RangeError(`maxPoints must be an integer >= 2, got ${maxPoints}`);
    this.maxPoints = maxPoints;
  }

  /** Values that are not finite (a diverged loss) are counted but not plotted. */
  push(step: number, value: number): void {
    this.#received++;
    if (!Number.isFinite(value) || !Number.isFinite(step)) return;
    this.#pendingN++;
    this.#pendingSum += value;
    this.#pendingStep = step;
    if (this.#pendingN < this.#stride) return;
    this.#points.push([this.#pendingStep, this.#pendingSum / this.#pendingN]);
    this.#pendingN = 0;
    this.#pendingSum = 0;
    if (this.#points.length > this.maxPoints) this.#compact();
  }

  #compact(): void {
    const merged: Point[] = [];
    const p = this.#points;
    for (let i = 0; i + 1 < p.length; i += 2) merged.push([p[i + 1][0], (p[i][1] + p[i + 1][1]) / 2]);
    if (p.length % 2 === 1) merged.push(p[p.length - 1]);
    this.#points = merged;
    this.#stride *= 2;
  }

  /** Points to plot: the kept ones plus the partial bucket, if any. */
  points(): Point[] {
    return this.#pendingN > 0 ? [...this.#points, [this.#pendingStep, this.#pendingSum / this.#pendingN]] : [...this.#points];
  }

  /** Incoming points per kept point (1 until the history first overflows). */
  get stride(): number {
    return this.#stride;
  }

  /** Every value pushed, plotted or not. */
  get received(): number {
    return this.#received;
  }

  /** The last `n` plotted values (for sparklines). */
  lastValues(n: number): number[] {
    return this.points()
      .slice(-n)
      .map((p) => p[1]);
  }
}
