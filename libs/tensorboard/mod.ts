// Public API of @actorflow/tensorboard: TensorBoard scalar event files written (and read back) by a
// small pure encoder that works on every TF.js backend, and our loss/eval reports mapped to tags.
export { ScalarWriter, readScalars, type ScalarWriterOptions, type ScalarPoint } from './src/writer.ts';
export { summarizeLoss, summarizeEval } from './src/summaries.ts';
export { readEventFile, FILE_VERSION, type TfEvent, type ScalarValue } from './src/events.ts';
export { TensorBoardError } from './src/errors.ts';
