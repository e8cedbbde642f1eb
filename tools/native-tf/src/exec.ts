// Child processes with captured output, optional line-by-line progress and a log file.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called with each output line (stdout and stderr), for progress. */
  readonly onLine?: (line: string) => void;
  /** Every output line is appended here too. */
  readonly logFile?: string;
  readonly timeoutMs?: number;
}

/** Runs a command to completion; a command that cannot start gives code null and the error in stderr. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let pending = '';
    const lines = (chunk: Buffer): void => {
      if (opts.onLine === undefined && opts.logFile === undefined) return;
      pending += chunk.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) emit(line);
    };
    const emit = (line: string): void => {
      if (opts.logFile !== undefined) appendFileSync(opts.logFile, `${line}\n`);
      opts.onLine?.(line);
    };
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      lines(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      err.push(c);
      lines(c);
    });
    child.on('error', (e) => resolvePromise({ code: null, signal: null, stdout: '', stderr: `${cmd}: ${e.message}` }));
    child.on('close', (code, signal) => {
      if (pending !== '') emit(pending);
      resolvePromise({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** The last n non-empty lines of a text. */
export function tail(text: string, n = 25): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}
