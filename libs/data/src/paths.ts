// Paths a user types are relative to the folder the user ran the command in. npm and nx run an
// app's script in the app's own folder, but record the user's folder in INIT_CWD, so that wins.
import { isAbsolute, resolve } from 'node:path';

/** The folder the user ran the command in: `INIT_CWD` (set by npm/nx) or else the process's cwd. */
export function userCwd(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const init = env.INIT_CWD;
  return init !== undefined && init !== '' ? init : process.cwd();
}

/** `path` made absolute against the user's folder (see userCwd); absolute paths are returned as they are. */
export function resolveUserPath(path: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return isAbsolute(path) ? resolve(path) : resolve(userCwd(env), path);
}
