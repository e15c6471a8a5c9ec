/** Shared pieces of the test daemons: free ports, binaries that may be missing, waiting for readiness, stopping. */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Finds a program on PATH, or in the sbin directories (daemons live there and root's PATH may lack them). */
export function which(program: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const dir of dirs) if (dir && existsSync(join(dir, program))) return join(dir, program);
  return null;
}

/**
 * What a test suite needing these programs should do: `false` when all are there; otherwise a skip reason. With CI
 * set, a missing program is an error instead (CI must install it): the returned `fail` message is for a failing test.
 */
export function requirePrograms(programs: string[], install: string, extra: string | null = null): { skip: string | false; fail: string | null } {
  const missing = programs.filter((p) => which(p) === null);
  const problems = [...(missing.length ? [`missing ${missing.join(', ')} (${install})`] : []), ...(extra ? [extra] : [])];
  if (problems.length === 0) return { skip: false, fail: null };
  const text = problems.join('; ');
  return process.env.CI ? { skip: text, fail: `CI is set, so this is an error: ${text}` } : { skip: `${text}; skipped (with CI set this fails)`, fail: null };
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, details: () => string = () => ''): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if (await check()) return;
    } catch {
      // not ready yet
    }
    await sleep(100);
  }
  throw new Error(`${what}: not ready after ${timeoutMs / 1000} s. ${details()}`);
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stopProcess(child: ChildProcess | number | null | undefined, graceMs = 3000): Promise<void> {
  if (child === null || child === undefined) return;
  const pid = typeof child === 'number' ? child : child.pid;
  if (pid === undefined || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until && alive(pid)) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped) counts as gone.
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat !== '' && !stat.startsWith('Z');
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
