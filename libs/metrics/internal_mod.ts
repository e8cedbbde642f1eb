// Internals shared with sibling packages (not a stable API).
export * from './mod.ts';
export { rankedBefore } from './src/topk.ts';
