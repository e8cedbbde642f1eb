// Internals shared with sibling packages (not a stable API).
export * from './mod.ts';
