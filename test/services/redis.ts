/** A throwaway redis-server on 127.0.0.1 for tests: no persistence, a free port, stopped in `after`. */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort, requirePrograms, stopProcess, waitFor, which } from './daemons.js';

export const redisAvailability = () => requirePrograms(['redis-server'], 'apt-get install -y redis-server');

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(which('redis-server')!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  await waitFor(`redis-server on port ${port}`, () => ping(port), 10_000, () => `its output:\n${output}`);
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => stopProcess(child) };
}

/** True when a Redis server answers PING on the port. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      socket.destroy();
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}
