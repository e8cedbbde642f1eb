// Internals shared with sibling packages (not a stable API).
export * from './mod.ts';
export { probeNative, nativeReason, NATIVE_PACKAGES } from './src/backend.ts';
