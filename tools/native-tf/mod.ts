// Public API of @actorflow/native-tf: build tfjs-node's addon against a TensorFlow wheel's libraries.
export { buildNativeTf, defaultCacheDir, resolvePackage, type NativeTfOptions, type NativeTfResult, type TfjsPackage } from './src/native-tf.ts';
export { NativeTfError, ToolMissingError, WheelNotFoundError, WheelLayoutError, MissingSymbolsError, NativeBuildError, NativeLoadError } from './src/errors.ts';
export { PINNED_TF_VERSION, LIBRARIES, findWheel, parseWheelName, extractWheel, fromInstalled, downloadWheel, pipPackage, type TfSource, type Variant } from './src/wheel.ts';
export { requiredSymbols, parseNm, exportedSymbols, undefinedTfSymbols, checkSymbols, bindingSources } from './src/symbols.ts';
export { layoutDeps, findNodeDir, findNodeGyp, addonPath, buildAddon, smokeTest, LINK_NAMES } from './src/build.ts';
