// Typed failures of the native build: each says what failed, where, and what to do about it.

export class NativeTfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tool the build needs (python3 with pip, nm, a C++ compiler, node-gyp, Node headers) is missing. */
export class ToolMissingError extends NativeTfError {}

/** No wheel (or installed TensorFlow) to take libtensorflow from. */
export class WheelNotFoundError extends NativeTfError {}

/** The wheel lacks the files tfjs-node needs (libraries under the expected names, C API headers). */
export class WheelLayoutError extends NativeTfError {}

/** The wheel's libraries do not export every TF_/TFE_ function the tfjs-node addon calls. */
export class MissingSymbolsError extends NativeTfError {
  constructor(
    readonly missing: readonly string[],
    readonly libraries: readonly string[],
  ) {
    super(
      `${missing.length} symbol(s) the tfjs-node addon needs are not exported (nm -D --defined-only) by ${libraries.join(' + ')}: ` +
        `${missing.join(', ')}. Use a TensorFlow wheel that exports them (the pinned one does: see tools/native-tf/README.md).`,
    );
  }
}

/** node-gyp failed; the log holds the compiler's output. */
export class NativeBuildError extends NativeTfError {
  constructor(
    readonly logPath: string,
    readonly tail: string,
  ) {
    super(`node-gyp could not build the tfjs-node addon (full log: ${logPath}). Last lines:\n${tail}`);
  }
}

/** The addon was built but does not load or compute (ABI mismatch, unresolved symbol, crash). */
export class NativeLoadError extends NativeTfError {}
