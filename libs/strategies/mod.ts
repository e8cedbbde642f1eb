// Public API of @actorflow/strategies: the single-process reference strategy and the parameter plumbing every strategy shares.
export { trainLocal, evaluate, type LocalOptions, type LocalResult, type StepReport } from './src/local.ts';
export { initParams, gather, applyStep, createOptimizer, type ParamStore } from './src/params.ts';
