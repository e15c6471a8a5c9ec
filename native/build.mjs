#!/usr/bin/env node
// Builds the optional native kernel add-on (native/build/Release/flip_kernels.node) with node-gyp. Run by
// `npm install` (postinstall) and by `npm run build:native`. It needs a C++ compiler, Node's headers and a CBLAS
// (Debian: apt-get install libopenblas-dev). Without them it says why and exits 0: the trainer then runs on the
// wasm kernels alone (slower, same results). FLIP_SKIP_NATIVE_BUILD=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const strict = process.argv.includes('--strict'); // exit 1 on failure (npm run build:native)

function skip(reason) {
  console.warn(`flip-sweep: native kernels not built: ${reason}.`);
  console.warn('  The trainer uses the wasm kernels instead (same results, several times slower per step).');
  console.warn('  To build them: apt-get install g++ make python3 libopenblas-dev, then npm run build:native');
  process.exit(strict ? 1 : 0);
}

if (process.env.FLIP_SKIP_NATIVE_BUILD === '1') skip('FLIP_SKIP_NATIVE_BUILD=1');
if (process.platform !== 'linux' || process.arch !== 'x64') skip(`built and tested on linux-x64 only, this is ${process.platform}-${process.arch}`);

const cblasHeaders = ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'];
if (!cblasHeaders.some((h) => existsSync(h))) skip(`no CBLAS header (looked for ${cblasHeaders.join(', ')}; Debian package libopenblas-dev)`);

// npm hands its own node-gyp to install scripts as npm_config_node_gyp; outside npm, try the one beside npm.
const candidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
].filter(Boolean);
const nodeGyp = candidates.find((c) => existsSync(c));
if (!nodeGyp) skip(`node-gyp not found (looked in ${candidates.join(', ')})`);

// node-gyp would download Node's headers, which this network does not allow; use the installed ones when present.
const args = [nodeGyp, 'rebuild'];
const headers = ['/usr/include/node/node_api.h', path.join(path.dirname(process.execPath), '../include/node/node_api.h')];
if (!process.env.npm_config_nodedir) {
  const found = headers.find((h) => existsSync(h));
  if (found) args.push(`--nodedir=${path.resolve(path.dirname(found), '../..')}`);
}

const result = spawnSync(process.execPath, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  rmSync(path.join(here, 'build'), { recursive: true, force: true }); // no half-built add-on left to load
  const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-12).join('\n    ');
  skip(`node-gyp failed (exit ${result.status ?? result.signal}):\n    ${tail}`);
}
console.log(`flip-sweep: native kernels built (${path.relative(process.cwd(), path.join(here, 'build/Release/flip_kernels.node'))})`);
