/**
 * Whether the process that claimed a job is still that process. `process.kill(pid, 0)` alone is fooled twice: it
 * succeeds on a zombie (a coordinator killed with its parent stays one until whoever adopts it reaps it; in a container
 * without an init process, for ever) and on an unrelated process that was given the same pid later. On Linux,
 * /proc/PID/stat tells both apart: its state ('Z' zombie, 'X' dead) and its start time (field 22, clock ticks since
 * boot), which is recorded with the pid when a job is claimed. Elsewhere only the signal test is available, and the
 * lease's expiry (framework/store/result-store.ts) is the fallback.
 */
import { readFileSync } from 'node:fs';

interface ProcStat {
  state: string;
  /** Clock ticks since boot at which the process started. */
  startTicks: number;
}

/** /proc/PID/stat parsed; null when there is no such process; undefined where /proc is not available. */
function procStat(pid: number): ProcStat | null | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return procAvailable() ? null : undefined;
    return undefined;
  }
  // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
  return { state: fields[0], startTicks: Number(fields[19]) };
}

let procChecked: boolean | null = null;
function procAvailable(): boolean {
  if (procChecked === null) {
    try {
      readFileSync('/proc/self/stat');
      procChecked = true;
    } catch {
      procChecked = false;
    }
  }
  return procChecked;
}

/** The start time of a process (clock ticks since boot), or null where /proc does not tell. */
export function processStartTicks(pid: number): number | null {
  const stat = procStat(pid);
  return stat && Number.isFinite(stat.startTicks) ? stat.startTicks : null;
}

/**
 * Whether the process `pid` of this machine, started at `startTicks` (null: unknown), still runs. A zombie, a missing
 * pid and a pid now held by a process started at another time are all dead.
 */
export function isProcessAlive(pid: number, startTicks: number | null): boolean {
  const stat = procStat(pid);
  if (stat === null) return false;
  if (stat !== undefined) {
    if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return false;
    return startTicks === null || stat.startTicks === startTicks;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
