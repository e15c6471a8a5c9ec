/**
 * Entry point of a job's child process: receives one resolved TrainConfig from the coordinator, runs the shared
 * trainer (or, with evaluate_checkpoint, only evaluates saved weights) and streams its events back over IPC.
 * Exit code 0 after a result, 1 after an error, 3 after stopping on SIGTERM with its state saved.
 */
import { ConfigError, loadTrainer, TrainingStopped, type TrainConfig, type TrainEvents } from '../../models/index.js';
import { applyFault, faultFromEnv } from './fault-injection.js';
import type { JobMessage, JobRequest } from './messages.js';

function send(message: JobMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      console.log(JSON.stringify(message));
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

/** Exit code after stopping on SIGTERM with the training state saved. */
const INTERRUPTED_EXIT = 3;
/** SIGTERM (the coordinator's stop, Slurm's scancel --signal, preemption, time limit): training saves its state at the
 * next step boundary and stops. An evaluation-only job has nothing to save: it dies at once. */
const stopTraining = new AbortController();

async function run(request: JobRequest): Promise<number> {
  const config = request.config as TrainConfig;
  try {
    const fault = faultFromEnv(config.seed);
    const events: TrainEvents = {
      onStart: (info) => void send({ type: 'start', ...info }),
      onStep: (step, metrics) => void send({ type: 'step', step, metrics: applyFault(fault, step, metrics) }),
      onEval: (step, metrics) => void send({ type: 'eval', step, metrics }),
      onLog: (message) => void send({ type: 'log', message }),
    };
    const { evaluateCheckpoint, train } = await loadTrainer();
    const result = request.evaluate_checkpoint
      ? await evaluateCheckpoint(config, request.evaluate_checkpoint, events)
      : await train(config, events, { ...(request.checkpoint_dir ? { checkpointDir: request.checkpoint_dir } : {}), stopSignal: stopTraining.signal });
    await send({
      type: 'result',
      backend: result.backend,
      device: result.device,
      results: result.results,
      ...(result.artifacts ? { artifacts: result.artifacts } : {}),
    });
    return 0;
  } catch (err) {
    if (err instanceof TrainingStopped) {
      await send({ type: 'interrupted', step: err.step, saved: err.saved, message: err.message });
      return INTERRUPTED_EXIT;
    }
    const message = err instanceof Error ? err.message : String(err);
    await send({ type: 'error', message, config: err instanceof ConfigError });
    return 1;
  }
}

// A job without its coordinator has nowhere to report: stop (the next sweep reruns it).
process.on('disconnect', () => process.exit(1));
// The coordinator decides what Ctrl-C means for a job (it records the job as interrupted and then stops us).
process.on('SIGINT', () => {});
process.once('message', (request: JobRequest) => {
  if (!request.evaluate_checkpoint) process.on('SIGTERM', () => stopTraining.abort());
  run(request).then((code) => {
    process.disconnect?.();
    // tfjs may keep handles open; the job is over once its result is sent.
    process.exit(code);
  });
});
