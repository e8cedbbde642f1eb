// Public API of @actorflow/metrics (rating metrics now; ranking metrics come with the model zoo).
export { mse, rmse, mae, RegressionAccumulator, MetricsError } from './src/regression.ts';
