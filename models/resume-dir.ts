import { join } from 'node:path';

/** Where a job's resume states live inside its checkpoint directory (models/resume.ts writes them). */
export function resumeDirOf(checkpointDir: string): string {
  return join(checkpointDir, 'resume');
}
