// Rating-prediction metrics. Evaluation goes batch by batch, so each metric also has a
// streaming accumulator; sums are in float64 so 20M terms do not lose precision.

export class MetricsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricsError';
  }
}

type Numbers = ArrayLike<number>;

function check(pred: Numbers, truth: Numbers): void {
  if (pred.length !== truth.length) throw new MetricsError(`${pred.length} predictions for ${truth.length} true values`);
}

export class RegressionAccumulator {
  #n = 0;
  #se = 0;
  #ae = 0;

  add(pred: Numbers, truth: Numbers): void {
    check(pred, truth);
    for (let i = 0; i < pred.length; i++) {
      const e = pred[i] - truth[i];
      this.#se += e * e;
      this.#ae += Math.abs(e);
    }
    this.#n += pred.length;
  }

  get count(): number {
    return this.#n;
  }

  /** {mse, rmse, mae}; NaN when nothing was added. */
  result(): { mse: number; rmse: number; mae: number } {
    const mse = this.#n === 0 ? Number.NaN : this.#se / this.#n;
    return { mse, rmse: Math.sqrt(mse), mae: this.#n === 0 ? Number.NaN : this.#ae / this.#n };
  }
}

export function mse(pred: Numbers, truth: Numbers): number {
  const a = new RegressionAccumulator();
  a.add(pred, truth);
  return a.result().mse;
}

export function rmse(pred: Numbers, truth: Numbers): number {
  return Math.sqrt(mse(pred, truth));
}

export function mae(pred: Numbers, truth: Numbers): number {
  const a = new RegressionAccumulator();
  a.add(pred, truth);
  return a.result().mae;
}
