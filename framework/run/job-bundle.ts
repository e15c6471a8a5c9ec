/**
 * The job process as one plain JavaScript file, so that a job starts without the TypeScript loader: under tsx every
 * module a job loads (the @tensorflow/tfjs bundle alone is ~100 CommonJS files) goes through its resolve and load
 * hooks, which doubled the import time (1.1-1.2 s instead of 0.5-0.6 s for tfjs, measured). esbuild bundles
 * framework/run/job-process.ts and our modules it imports (~0.2 s, once per coordinator process); packages stay
 * external and load from node_modules as usual. The file is named by a hash of its contents, so coordinators running
 * side by side share it and an edited source gives a new file. FLIP_JOB_BUNDLE=0 runs jobs through tsx instead.
 * FLIP_JOB_PROCESS names a job process built beforehand: the GPU bundle (scripts/gpu/prepare.sh) ships one, because the
 * machines it runs on have neither esbuild nor tsx.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE = join(ROOT, 'framework/run/job-process.ts');
/** Inside the project, so that the bundle's package imports resolve to the project's node_modules. */
const CACHE_DIR = join(ROOT, 'node_modules/.cache/flip-sweep');

let pending: Promise<string | null> | null = null;

/** The bundled job process's path, or null (bundling turned off or failed: jobs then run the TypeScript source). */
export function jobBundle(log: (message: string) => void = () => {}): Promise<string | null> {
  pending ??= build(log);
  return pending;
}

async function build(log: (message: string) => void): Promise<string | null> {
  const prebuilt = process.env.FLIP_JOB_PROCESS;
  if (prebuilt) {
    // No fallback: without esbuild and tsx a missing file would only surface as every job crashing at start.
    if (!existsSync(prebuilt)) throw new Error(`FLIP_JOB_PROCESS=${prebuilt}: no such file (a job process bundled by scripts/gpu/prepare.sh, e.g. tmp/gpu-bundle/job-process.mjs)`);
    return resolve(prebuilt);
  }
  if (process.env.FLIP_JOB_BUNDLE === '0') return null;
  try {
    const esbuild = await import('esbuild');
    const out = await esbuild.build({
      entryPoints: [SOURCE],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      write: false,
      logLevel: 'silent',
      outfile: 'job-process.mjs',
    });
    const code = out.outputFiles[0].contents;
    const file = join(CACHE_DIR, `job-process-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      mkdirSync(CACHE_DIR, { recursive: true });
      // Written aside and renamed: a job of another coordinator never sees half a file.
      const partial = `${file}.${process.pid}.tmp`;
      writeFileSync(partial, code);
      renameSync(partial, file);
    }
    return file;
  } catch (err) {
    log(`jobs run through tsx: bundling the job process failed (${(err as Error).message})`);
    return null;
  }
}
