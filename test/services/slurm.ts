/**
 * A throwaway single-node Slurm cluster for tests (munged, slurmctld, slurmd on 127.0.0.1, free ports, state in a temp
 * dir), as root without systemd. Its client commands reach it through SLURM_CONF (in `env`); stopped in `after`.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import { freePort, requirePrograms, sleep, stopProcess, waitFor, which } from './daemons.js';

export const SLURM_PROGRAMS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo', 'runuser'];

export const slurmAvailability = () =>
  requirePrograms(
    SLURM_PROGRAMS,
    'apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge',
    process.getuid?.() === 0 ? null : 'starting munged and slurmd needs root',
  );

export interface TestSlurm {
  /** Environment for the Slurm client commands (and for a sweep that calls them). */
  env: NodeJS.ProcessEnv;
  dir: string;
  stop(): Promise<void>;
}

export async function startSlurm(): Promise<TestSlurm> {
  const dir = mkdtempSync('/tmp/flip-slurm-');
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  const mungeDir = join(dir, 'munge');
  mkdirSync(mungeDir);
  const uid = Number(execFileSync('id', ['-u', 'munge']).toString());
  const gid = Number(execFileSync('id', ['-g', 'munge']).toString());
  chownSync(mungeDir, uid, gid);
  // munged refuses a socket directory that others cannot traverse.
  chmodSync(mungeDir, 0o755);
  const socket = join(mungeDir, 'munge.socket');
  children.push(
    spawn('runuser', ['-u', 'munge', '--', which('munged')!, '-F', `--socket=${socket}`, `--pid-file=${mungeDir}/munged.pid`, `--log-file=${mungeDir}/munged.log`, `--seed-file=${mungeDir}/seed`], { stdio: 'ignore' }),
  );
  const mungePid = (): number | null => (existsSync(`${mungeDir}/munged.pid`) ? Number(readFileSync(`${mungeDir}/munged.pid`, 'utf8')) : null);

  const node = hostname().split('.')[0];
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=fliptest',
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${dir}/jobcomp.txt`,
      'JobAcctGatherType=jobacct_gather/none',
      'MpiDefault=none',
      'ReturnToService=2',
      'SchedulerParameters=sched_interval=1',
      'KillWait=5',
      // At least 4 CPUs (the tests run up to 4 tasks at once) even on a smaller machine: slurmd takes the config's
      // word for it.
      'SlurmdParameters=config_overrides',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${Math.max(4, availableParallelism())} RealMemory=1024 State=UNKNOWN`,
      'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const stop = async (): Promise<void> => {
    // Jobs first (their processes are not children of slurmd once started), then the daemons.
    spawnSync('scancel', ['--user', String(process.getuid?.() ?? 0)], { env });
    const until = Date.now() + 10_000;
    while (Date.now() < until && spawnSync('squeue', ['--noheader'], { env, encoding: 'utf8' }).stdout.trim() !== '') await sleep(200);
    for (const child of children.slice(1).reverse()) await stopProcess(child);
    await stopProcess(mungePid());
    await stopProcess(children[0]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('munged', () => existsSync(socket), 10_000, () => tail(`${mungeDir}/munged.log`));
    for (const [program, args] of [
      ['slurmctld', ['-D', '-i']],
      ['slurmd', ['-D', '-N', node]],
    ] as const) {
      children.push(spawn(which(program)!, [...args], { env, stdio: 'ignore' }));
    }
    await waitFor(
      'slurm node idle',
      () => spawnSync('sinfo', ['--noheader', '--format=%t'], { env, encoding: 'utf8' }).stdout.trim() === 'idle',
      30_000,
      () => `slurmctld.log:\n${tail(`${dir}/slurmctld.log`)}\nslurmd.log:\n${tail(`${dir}/slurmd.log`)}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { env, dir, stop };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-10).join('\n');
  } catch {
    return `(no ${file})`;
  }
}
