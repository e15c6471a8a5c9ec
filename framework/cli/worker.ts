/**
 * `npm run worker -- --redis redis://HOST:PORT [--concurrency N]`: runs the jobs a `--executor bullmq` sweep queues, on
 * this machine, each in its own child process (the trainer in framework/run/job-process.ts). Start one per machine
 * from a checkout of the same commit as the coordinator's. Ctrl-C once: finish the running jobs and stop; twice: stop
 * now (the running jobs go back to the queue and run again elsewhere).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { CANCEL_CHANNEL, QUEUE_NAME, QUEUE_PREFIX, checkRedis, type ProgressReport, type QueuedJob } from '../run/bullmq-executor.js';
import type { JobOutcome } from '../run/executor.js';
import { outcomeText } from '../run/job-runner-core.js';
import { availableParallelism } from 'node:os';
import { LocalExecutor } from '../run/local-executor.js';
import type { JobMessage } from '../run/messages.js';
import { EXIT, fail, intFlag, parseCli } from './common.js';

const USAGE = `usage: npm run worker -- --redis redis://HOST:PORT [options]

  --redis URL            the Redis server the sweep coordinator uses (required)
  --concurrency N        jobs at once on this machine (default 1, or one per GPU with --gpus)
  --gpus 0,1,...         one job per listed GPU at a time (as the local executor's --gpus)
  --lock-seconds S       a job whose worker is silent this long is given to another worker (default 30)
  --name NAME            this worker's name in logs and in Redis (default host:pid)`;

/** Step messages are sent to Redis in batches this far apart; start, eval and the outcome go at once. */
const BATCH_MS = 200;

const args = parseCli('worker', USAGE, {
  redis: { type: 'string' },
  concurrency: { type: 'string' },
  gpus: { type: 'string' },
  'lock-seconds': { type: 'string' },
  name: { type: 'string' },
});
if (args.values.help) fail(USAGE, EXIT.ok);
if (args.positionals.length > 0) fail(`worker: unexpected argument "${args.positionals[0]}"\n\n${USAGE}`, EXIT.invalid);
const url = args.values.redis;
if (!url) fail(`worker: --redis is required\n\n${USAGE}`, EXIT.invalid);
const gpus = args.values.gpus?.split(',').map((g) => g.trim()).filter(Boolean);
const concurrency = intFlag('concurrency', args.values.concurrency, gpus?.length || 1, 1);
// One executor for all jobs: it hands each job a free GPU (jobs beyond the GPUs wait for one).
// The jobs running at once share this machine's cores (the native kernels' threads, FLIP_NATIVE_THREADS).
const executor = new LocalExecutor({ gpus, threadsPerJob: Math.max(1, Math.floor(availableParallelism() / concurrency)) });
const lockMs = intFlag('lock-seconds', args.values['lock-seconds'], 30, 1) * 1000;
const name = args.values.name ?? `${hostname()}:${process.pid}`;

try {
  await checkRedis(url);
} catch (err) {
  fail(`worker: ${(err as Error).message}`, EXIT.failed);
}

const log = (text: string): void => console.log(`[worker ${name}] ${text}`);

async function processJob(job: Job<QueuedJob>, _token: string | undefined, signal: AbortSignal | undefined): Promise<JobOutcome> {
  const { hash, experiment, config, extras } = job.data;
  const run = randomUUID();
  let batch: JobMessage[] = [];
  let timer: NodeJS.Timeout | null = null;
  // updateProgress calls are chained: Redis receives the reports in order, and the last one before the outcome.
  let sent: Promise<void> = Promise.resolve();
  let seq = 0;
  const report = (outcome?: JobOutcome): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    const progress: ProgressReport = { run, seq: ++seq, worker: name, messages: batch, ...(outcome ? { outcome } : {}) };
    batch = [];
    // The log keeps every report (for a coordinator that attaches later); the progress event delivers it now.
    sent = sent
      .then(() => job.log(JSON.stringify(progress)))
      .then(() => job.updateProgress(progress as unknown as object))
      .catch((err) => log(`job ${hash}: could not report progress: ${(err as Error).message}`));
  };
  const onMessage = (m: JobMessage): void => {
    batch.push(m);
    if (m.type === 'start') log(`job ${hash} (${experiment}) started on ${m.backend}`);
    if (m.type === 'step' || m.type === 'log') timer ??= setTimeout(() => report(), BATCH_MS);
    else report();
  };
  log(`job ${hash} (${experiment}) taken${job.attemptsStarted > 1 ? ` (start ${job.attemptsStarted}: its previous worker was lost)` : ''}`);
  const outcome = await executor.run(config, onMessage, signal ?? new AbortController().signal, extras ?? {});
  report(outcome);
  await sent;
  log(`job ${hash} ${outcomeText(outcome)}`);
  if (outcome.kind === 'result') return outcome;
  // The coordinator reads the precise outcome from the last progress report; the message is for BullMQ's own records.
  const message = outcomeText(outcome);
  throw outcome.kind === 'error' && outcome.config ? new UnrecoverableError(message) : new Error(message);
}

const worker = new Worker<QueuedJob, JobOutcome>(QUEUE_NAME, processJob, {
  connection: { url, maxRetriesPerRequest: null },
  prefix: QUEUE_PREFIX,
  name,
  concurrency,
  lockDuration: lockMs,
  stalledInterval: lockMs,
  // A job whose worker died runs again (twice at most): a job that kills every worker it lands on stops there.
  maxStalledCount: 2,
});
worker.on('error', (err) => log(`error: ${err.message}`));

// Abort requests from coordinators: the worker that holds the job stops it (the others ignore the message).
const subscriber = new Redis(url, { maxRetriesPerRequest: null });
subscriber.on('error', (err) => log(`cancel channel: ${err.message}`));
await subscriber.subscribe(CANCEL_CHANNEL);
subscriber.on('message', (_channel: string, jobId: string) => {
  if (worker.cancelJob(jobId, 'stopped by the sweep coordinator (Ctrl-C or --job-timeout)')) log(`job ${jobId} cancelled by its coordinator`);
});

await worker.waitUntilReady();
log(`listening on queue "${QUEUE_NAME}" at ${url} (concurrency ${concurrency}, lock ${lockMs / 1000} s)`);

let stopping = false;
const onSignal = (): void => {
  if (stopping) {
    log('stopping now; running jobs go back to the queue');
    process.exit(EXIT.interrupted);
  }
  stopping = true;
  log('finishing the running jobs, then stopping (Ctrl-C again to stop now)');
  void worker
    .close()
    .then(() => subscriber.quit())
    .then(() => process.exit(EXIT.ok));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
