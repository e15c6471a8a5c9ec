/** Writes framework/spec/experiment.schema.json from SPEC_SCHEMA (run by `npm run schema`; a test checks it is current). */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SPEC_SCHEMA } from './spec-schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('./experiment.schema.json', import.meta.url));
export const schemaFileText = (): string => JSON.stringify(SPEC_SCHEMA, null, 2) + '\n';

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, schemaFileText());
  console.log(`wrote ${SCHEMA_FILE}`);
}
