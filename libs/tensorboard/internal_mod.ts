// Internals shared with sibling packages and tests (not a stable API).
export * from './mod.ts';
export { encodeEvent, decodeEvent, frameRecord, readRecords } from './src/events.ts';
export { crc32c, maskedCrc32c } from './src/crc32c.ts';
