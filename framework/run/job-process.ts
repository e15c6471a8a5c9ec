/**
 * Entry point of a job's child process: receives one resolved TrainConfig from the coordinator, runs the shared
 * trainer and streams its events back over IPC. Exit code 0 after a result, 1 after an error.
 */
import type { TrainConfig } from '../../models/config.js';
import { ConfigError } from '../../models/events.js';
import { train } from '../../models/train.js';
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

async function run(config: TrainConfig): Promise<number> {
  try {
    const fault = faultFromEnv(config.seed);
    const result = await train(config, {
      onStart: (info) => void send({ type: 'start', ...info }),
      onStep: (step, metrics) => void send({ type: 'step', step, metrics: applyFault(fault, step, metrics) }),
      onEval: (step, metrics) => void send({ type: 'eval', step, metrics }),
      onLog: (message) => void send({ type: 'log', message }),
    });
    await send({ type: 'result', backend: result.backend, device: result.device, results: result.results });
    return 0;
  } catch (err) {
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
  run(request.config as TrainConfig).then((code) => {
    process.disconnect?.();
    // tfjs may keep handles open; the job is over once its result is sent.
    process.exit(code);
  });
});
