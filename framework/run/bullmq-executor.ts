/**
 * Runs jobs on worker machines through a BullMQ queue on Redis (`npm run worker -- --redis URL` on each machine).
 *
 * Message flow: a worker runs the trainer in a child process (job-process.ts, as the local executor does) and reports
 * its messages with job.updateProgress(ProgressReport), batched about every 200 ms; the coordinator reads them from one
 * QueueEvents stream ('progress', then 'completed' with the result or 'failed'), in order, and hands them to the
 * runner, which alone writes SQLite. Each report also goes to the job's BullMQ log (job.log), numbered: a job's BullMQ
 * id is its config hash, so adding the same config twice is a no-op, and a coordinator that finds its job already
 * waiting or running (queued by a coordinator that died) attaches to it, replaying the logged reports first, so that
 * its curves are complete.
 *
 * Retries: BullMQ makes one attempt (attempts = 1); the coordinator's --retries decide whether a failed job runs again
 * (its run() is called again), and this executor delays such a re-enqueue with an exponential backoff (BullMQ's delay).
 * A worker that dies (kill -9, machine lost) stops renewing its job's lock; another worker's stalled check puts the job
 * back in the queue (up to maxStalledCount times) and runs it again: not a coordinator retry, and the rerun's repeated
 * steps are dropped (RerunFilter), so the job is recorded once.
 *
 * Abort (Ctrl-C, --job-timeout): a waiting job is removed; a running one is cancelled through a Redis pub/sub channel
 * that every worker listens on (the worker holding it kills its child), then removed.
 */
import { Queue, QueueEvents, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { TrainConfig } from '../../models/index.js';
import type { Executor, JobExtras, JobOutcome } from './executor.js';
import { RerunFilter, isJobOutcome, jobKey } from './job-runner-core.js';
import type { JobMessage } from './messages.js';

/** The queue every worker listens on (one per Redis database; jobs of all experiments share it). */
export const QUEUE_NAME = 'flip-sweep';
/** BullMQ's key prefix (its default). */
export const QUEUE_PREFIX = 'bull';
/** Pub/sub channel on which the coordinator asks workers to stop a running job (message: the job id). */
export const CANCEL_CHANNEL = `${QUEUE_PREFIX}:${QUEUE_NAME}:flip-cancel`;

/** The data of a queued job. */
export interface QueuedJob {
  experiment: string;
  /** jobKey(config, extras): the config hash (with a suffix for an evaluation-only job), also the BullMQ job id. */
  hash: string;
  config: TrainConfig;
  /** Checkpoint folder or checkpoint to evaluate: paths the workers must see (shared storage). */
  extras?: JobExtras;
}

/** What a worker passes to job.updateProgress: messages of one start of the job process, and its outcome last. */
export interface ProgressReport {
  /** Unique per start of the job process (a stalled job started again gets a new one). */
  run: string;
  /** 1, 2, ... within a run: a report seen twice (replayed from the job log, then as an event) is used once. */
  seq: number;
  /** The worker's name (host:pid). */
  worker: string;
  messages: JobMessage[];
  /** Sent once, just before the worker completes or fails the BullMQ job. */
  outcome?: JobOutcome;
}

export interface BullmqExecutorOptions {
  /** First delay before a failed job is enqueued again (doubled each time, at most 5 minutes). @default 2000 */
  backoffMs?: number;
  /** How often the coordinator checks its jobs' states in Redis, in case an event was missed. @default 5000 */
  pollMs?: number;
  /** Keep finished jobs in Redis this long for inspection (a rerun replaces them). @default 86400 */
  keepFinishedSeconds?: number;
}

const DEFAULTS: Required<BullmqExecutorOptions> = { backoffMs: 2000, pollMs: 5000, keepFinishedSeconds: 86_400 };
const MAX_BACKOFF_MS = 300_000;
/** How long an abort waits for a worker to stop a running job before giving up on removing it. */
const CANCEL_WAIT_MS = 15_000;

interface Waiter {
  hash: string;
  onMessage: (message: JobMessage) => void;
  filter: RerunFilter;
  /** Set once the abort signal fired: only the abort path settles the run then. */
  aborting: boolean;
  /** The outcome the last start reported in its progress (precise kind for a failed BullMQ job). */
  reported: JobOutcome | null;
  /** The last report used, per run. */
  lastSeq: Map<string, number>;
  /** Until the job is added (or, for a job already queued, its log replayed), the events that arrive wait here. */
  held: (() => void)[] | null;
  /** Poll rounds in a row that found the job finished (or missing) with no event having resolved it. */
  finishedPolls: number;
  settle: (outcome: JobOutcome) => void;
}

export class BullmqExecutor implements Executor {
  readonly name = 'bullmq';
  private readonly waiters = new Map<string, Waiter>();
  /** Failed runs per config hash in this sweep (for the backoff of a re-enqueue). */
  private readonly failures = new Map<string, number>();
  private pollTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly url: string,
    private readonly experiment: string,
    private readonly queue: Queue<QueuedJob>,
    private readonly events: QueueEvents,
    private readonly publisher: Redis,
    private readonly options: Required<BullmqExecutorOptions>,
  ) {
    events.on('progress', ({ jobId, data }) => this.onProgress(jobId, data));
    events.on('completed', ({ jobId, returnvalue }) => this.onFinished(jobId, returnvalue, null));
    events.on('failed', ({ jobId, failedReason }) => this.onFinished(jobId, null, failedReason));
    events.on('stalled', ({ jobId }) => {
      this.waiters.get(jobId)?.onMessage({ type: 'status', message: 'its worker stopped renewing the job lock (worker died?): BullMQ queues the job again' });
    });
  }

  /** Connects to Redis (failing fast with the URL in the message) and starts listening to the queue's events. */
  static async connect(url: string, experiment: string, options: BullmqExecutorOptions = {}): Promise<BullmqExecutor> {
    await checkRedis(url);
    const connection = { url, maxRetriesPerRequest: null };
    const queue = new Queue<QueuedJob>(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
    const events = new QueueEvents(QUEUE_NAME, { connection, prefix: QUEUE_PREFIX });
    queue.on('error', (err) => process.stderr.write(`bullmq queue: ${err.message}\n`));
    events.on('error', (err) => process.stderr.write(`bullmq events: ${err.message}\n`));
    // Events are read from the moment the stream is joined: join it before adding any job.
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    if ((await queue.getWorkersCount()) === 0) {
      process.stderr.write(`bullmq: no worker listens on queue "${QUEUE_NAME}" at ${url} yet; jobs wait until one starts (npm run worker -- --redis ${url})\n`);
    }
    return new BullmqExecutor(url, experiment, queue, events, new Redis(url, { maxRetriesPerRequest: 3 }), { ...DEFAULTS, ...options });
  }

  async run(config: TrainConfig, onMessage: (message: JobMessage) => void, signal: AbortSignal, extras: JobExtras = {}): Promise<JobOutcome> {
    const aborted = (): JobOutcome => ({ kind: 'aborted', reason: String(signal.reason ?? 'aborted') });
    if (signal.aborted) return aborted();
    const hash = jobKey(config, extras);
    if (this.waiters.has(hash)) return { kind: 'crashed', message: `job ${hash} is already running in this sweep (a config listed twice?)` };

    let settle!: (outcome: JobOutcome) => void;
    const done = new Promise<JobOutcome>((resolve) => (settle = resolve));
    const waiter: Waiter = { hash, onMessage, filter: new RerunFilter(onMessage), aborting: false, reported: null, lastSeq: new Map(), held: [], finishedPolls: 0, settle };
    // Listen before the job exists: its first events can follow the add at once.
    this.waiters.set(hash, waiter);
    const onAbort = (): void => {
      waiter.aborting = true;
      void this.cancel(hash).finally(() => settle(aborted()));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.startPolling();
    try {
      try {
        await this.enqueue(waiter, config, extras);
      } finally {
        this.release(waiter);
      }
      // An abort while the job was being added may have missed it: cancel it again now that it exists.
      if (signal.aborted) await this.cancel(hash);
      const outcome = await done;
      if (outcome.kind !== 'result') this.failures.set(hash, (this.failures.get(hash) ?? 0) + 1);
      return outcome;
    } catch (err) {
      return { kind: 'crashed', message: `could not queue job ${hash} on ${this.url}: ${(err as Error).message}` };
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.waiters.delete(hash);
      if (this.waiters.size === 0) this.stopPolling();
    }
  }

  /** Closes the Redis connections (the sweep is over). */
  async close(): Promise<void> {
    this.stopPolling();
    await Promise.allSettled([this.events.close(), this.queue.close(), this.publisher.quit()]);
  }

  private async enqueue(waiter: Waiter, config: TrainConfig, extras: JobExtras): Promise<void> {
    const hash = waiter.hash;
    const existing = await this.queue.getJob(hash);
    if (existing) {
      const state = await existing.getState();
      // A live job (queued by a coordinator that died, or by another sweep of the same config): attach to it.
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
        const n = await this.replay(waiter);
        waiter.onMessage({ type: 'status', message: `attached to job ${hash}, already in queue ${QUEUE_NAME} (${state}); replayed ${n} reports from its log` });
        return;
      }
      // A finished one from an earlier sweep or attempt: replace it.
      await existing.remove();
    }
    const failures = this.failures.get(hash) ?? 0;
    const delay = failures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, this.options.backoffMs * 2 ** (failures - 1));
    const keep = this.options.keepFinishedSeconds;
    await this.queue.add('train', { experiment: this.experiment, hash, config, ...(Object.keys(extras).length ? { extras } : {}) }, {
      jobId: hash,
      attempts: 1,
      delay,
      removeOnComplete: { age: keep },
      removeOnFail: { age: keep },
    });
  }

  /** Forwards the reports in the job's log that did not arrive as events (all of them for a job attached to); returns
   * how many. */
  private async replay(waiter: Waiter): Promise<number> {
    const { logs } = await this.queue.getJobLogs(waiter.hash);
    let used = 0;
    for (const text of logs) {
      let report: unknown;
      try {
        report = JSON.parse(text);
      } catch {
        continue;
      }
      if (isProgressReport(report) && this.use(waiter, report)) used++;
    }
    return used;
  }

  /** Forwards the events held while the job was being added (or its log replayed); later events go straight through. */
  private release(waiter: Waiter): void {
    const held = waiter.held ?? [];
    waiter.held = null;
    for (const event of held) event();
  }

  private onProgress(jobId: string, data: unknown): void {
    const waiter = this.waiters.get(jobId);
    if (!waiter || !isProgressReport(data)) return;
    if (waiter.held) waiter.held.push(() => this.use(waiter, data));
    else this.use(waiter, data);
  }

  /** Forwards a report's messages unless it was used before; true when used. */
  private use(waiter: Waiter, report: ProgressReport): boolean {
    if (report.seq <= (waiter.lastSeq.get(report.run) ?? 0)) return false;
    waiter.lastSeq.set(report.run, report.seq);
    for (const m of report.messages) waiter.filter.accept(report.run, m, report.worker);
    if (report.outcome) waiter.reported = report.outcome;
    return true;
  }

  private onFinished(jobId: string, returnvalue: unknown, failedReason: string | null): void {
    const waiter = this.waiters.get(jobId);
    if (!waiter || waiter.aborting) return;
    const finish = (): void => waiter.settle(finalOutcome(returnvalue, failedReason, waiter.reported));
    if (waiter.held) waiter.held.push(finish);
    else finish();
  }

  /** Removes a waiting job, or asks the worker running it to stop and removes it once it has. */
  private async cancel(hash: string): Promise<void> {
    try {
      await this.publisher.publish(CANCEL_CHANNEL, hash);
      const until = Date.now() + CANCEL_WAIT_MS;
      while (Date.now() < until) {
        const job = await this.queue.getJob(hash);
        if (!job) return;
        const state = await job.getState();
        if (state !== 'active') {
          await job.remove();
          return;
        }
        await sleep(250);
      }
    } catch {
      // Best effort: a job left behind is replaced by the next run() of its config.
    }
  }

  /** A fallback for events missed (a dropped connection): settle jobs that have been finished for two polls. */
  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => void this.poll(), this.options.pollMs);
    this.pollTimer.unref();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private async poll(): Promise<void> {
    for (const waiter of [...this.waiters.values()]) {
      if (waiter.aborting) continue;
      let job: Job<QueuedJob> | undefined;
      let state: string;
      try {
        job = await this.queue.getJob(waiter.hash);
        state = job ? await job.getState() : 'missing';
      } catch {
        continue;
      }
      if (state !== 'completed' && state !== 'failed' && state !== 'missing') {
        waiter.finishedPolls = 0;
        continue;
      }
      // The events of a job that just finished may still be on their way: wait one more round for them.
      if (++waiter.finishedPolls < 2) continue;
      if (!job) {
        waiter.settle({ kind: 'crashed', message: `job ${waiter.hash} disappeared from queue ${QUEUE_NAME} before it finished (removed by another coordinator?)` });
        continue;
      }
      // The events were missed: take the messages (and the reported outcome) from the job's log.
      try {
        await this.replay(waiter);
      } catch {
        continue;
      }
      waiter.settle(finalOutcome(state === 'completed' ? job.returnvalue : null, state === 'failed' ? job.failedReason : null, waiter.reported));
    }
  }
}

function finalOutcome(returnvalue: unknown, failedReason: string | null, reported: JobOutcome | null): JobOutcome {
  if (failedReason === null) {
    if (isJobOutcome(returnvalue)) return returnvalue;
    return { kind: 'crashed', message: `the worker completed the job with an unexpected value: ${JSON.stringify(returnvalue)?.slice(0, 200)}` };
  }
  // The worker reports the precise outcome before failing the job; without it the worker itself failed.
  if (reported && reported.kind !== 'result') return reported;
  return { kind: 'crashed', message: `BullMQ failed the job: ${failedReason}` };
}

function isProgressReport(value: unknown): value is ProgressReport {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  return typeof r.run === 'string' && typeof r.seq === 'number' && typeof r.worker === 'string' && Array.isArray(r.messages);
}

/** Fails with a clear message when Redis cannot be reached (BullMQ itself would retry forever). */
export async function checkRedis(url: string): Promise<void> {
  if (!/^rediss?:\/\//.test(url)) throw new Error(`--redis: found "${url}"; expected a URL like redis://HOST:PORT`);
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // The socket error (ECONNREFUSED, ENOTFOUND) says more than the "Connection is closed." connect() rejects with.
  let cause: Error | null = null;
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(`--redis ${url}: cannot reach Redis (${(cause ?? (err as Error)).message})`);
  } finally {
    client.disconnect();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
