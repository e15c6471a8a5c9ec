/** Runs each job in a child Node process on this machine (the trainer in framework/run/job-process.ts). */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ADDON_PATH, type TrainConfig } from '../../models/index.js';
import { JobTimedOut, type Executor, type JobExtras, type JobOutcome } from './executor.js';
import { jobBundle } from './job-bundle.js';
import type { JobMessage, JobRequest } from './messages.js';

const JOB_PROCESS = fileURLToPath(new URL('./job-process.ts', import.meta.url));

/**
 * V8 flags of every job process. A training step makes a few MB of short-lived objects (tensor handles, views, the
 * batch); with V8's default young generation they outlived it and filled the old space, and a full collection ran every
 * few steps (~2 ms a step on the reference step). `npm run bench` starts with the same flag, so it times what jobs do.
 */
export const JOB_NODE_FLAGS = ['--max-semi-space-size=32'];
/** Lines of a job's stderr kept for the error message of a crash. */
const STDERR_LINES = 15;
/** How long a stopped job (SIGTERM) may take to finish its step and save its resume state before it is killed. */
export const STOP_GRACE_MS = 30_000;
/** After --job-timeout (JobTimedOut): a job past its limit is most likely hung and would not save anyway. */
const TIMEOUT_GRACE_MS = 3_000;

export class LocalExecutor implements Executor {
  readonly name = 'local';
  private readonly freeGpus: string[];
  private readonly waiting: ((gpu: string) => void)[] = [];

  /**
   * With `gpus`, each job gets one of them to itself (CUDA_VISIBLE_DEVICES and FLIP_DEVICE in its environment).
   * `threadsPerJob` becomes FLIP_NATIVE_THREADS (the native kernels' threads) unless the environment already sets it,
   * so that jobs running side by side share the cores instead of fighting over them.
   */
  constructor(private readonly options: { gpus?: string[]; env?: NodeJS.ProcessEnv; threadsPerJob?: number } = {}) {
    this.freeGpus = [...(options.gpus ?? [])];
  }

  /** Jobs that can run at once: one per GPU, when GPUs are given. */
  get slots(): number | null {
    return this.options.gpus?.length ?? null;
  }

  async run(config: TrainConfig, onMessage: (message: JobMessage) => void, signal: AbortSignal, extras: JobExtras = {}): Promise<JobOutcome> {
    const request: JobRequest = { type: 'run', config, checkpoint_dir: extras.checkpointDir, evaluate_checkpoint: extras.evaluateCheckpoint };
    const bundle = await jobBundle((message) => console.error(`flip-sweep: ${message}`));
    if (!this.options.gpus?.length) return this.runOn(null, bundle, request, onMessage, signal);
    const gpu = this.freeGpus.shift() ?? (await new Promise<string>((resolve) => this.waiting.push(resolve)));
    try {
      return await this.runOn(gpu, bundle, request, onMessage, signal);
    } finally {
      const next = this.waiting.shift();
      if (next) next(gpu);
      else this.freeGpus.push(gpu);
    }
  }

  /** bundle: the job process bundled (framework/run/job-bundle.ts), or null to run its TypeScript source with tsx. */
  private runOn(gpu: string | null, bundle: string | null, request: JobRequest, onMessage: (message: JobMessage) => void, signal: AbortSignal): Promise<JobOutcome> {
    return new Promise((resolve) => {
      const env = { ...(this.options.env ?? process.env) };
      if (gpu !== null) Object.assign(env, { CUDA_VISIBLE_DEVICES: gpu, FLIP_DEVICE: gpu });
      if (this.options.threadsPerJob !== undefined && env.FLIP_NATIVE_THREADS === undefined) env.FLIP_NATIVE_THREADS = String(this.options.threadsPerJob);
      // The bundle cannot find the native add-on relative to its own file, as the sources do: it is told where.
      if (bundle) env.FLIP_NATIVE_ADDON ||= ADDON_PATH;
      const child = fork(bundle ?? JOB_PROCESS, [], {
        execArgv: bundle ? JOB_NODE_FLAGS : [...JOB_NODE_FLAGS, '--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env,
      });
      let stderr = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString()).split('\n').slice(-STDERR_LINES).join('\n');
      });
      let final: JobOutcome | null = null;
      child.on('message', (raw: JobMessage) => {
        // The device a job reports names the GPU slot it was given.
        const m: JobMessage = gpu !== null && (raw.type === 'start' || raw.type === 'result') ? { ...raw, device: `${raw.device} [gpu slot ${gpu}]` } : raw;
        if (m.type === 'result') final = { kind: 'result', backend: m.backend, device: m.device, results: m.results, artifacts: m.artifacts };
        else if (m.type === 'error') final = { kind: 'error', message: m.message, config: m.config };
        else if (m.type === 'interrupted') final = { kind: 'interrupted', reason: m.message };
        onMessage(m);
      });
      const abort = (): void => {
        child.kill('SIGTERM');
        const grace = signal.reason instanceof JobTimedOut ? TIMEOUT_GRACE_MS : STOP_GRACE_MS;
        setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), grace).unref();
      };
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
      child.on('error', (err) => {
        final ??= { kind: 'crashed', message: `could not start the job process: ${err.message}` };
      });
      child.on('exit', (code, sig) => {
        signal.removeEventListener('abort', abort);
        if (signal.aborted && (final === null || final.kind !== 'result')) {
          const saved = final?.kind === 'interrupted' ? `; ${final.reason}` : '';
          resolve({ kind: 'aborted', reason: `${String(signal.reason ?? 'aborted')}${saved}` });
        } else if (final) resolve(final);
        else {
          const how = sig ? `was killed by ${sig}` : `exited with code ${code}`;
          resolve({ kind: 'crashed', message: `the job process ${how} before reporting a result${stderr.trim() ? `; its last output:\n${stderr.trim()}` : ''}` });
        }
      });
      child.send(request);
    });
  }
}
