/** Writes framework/spec/experiment.schema.json and the README's config reference (`npm run schema`); a test checks both are current. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withConfigReference } from './config-docs.js';
import { SPEC_SCHEMA } from './spec-schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('./experiment.schema.json', import.meta.url));
export const README_FILE = fileURLToPath(new URL('../../README.md', import.meta.url));
export const schemaFileText = (): string => JSON.stringify(SPEC_SCHEMA, null, 2) + '\n';

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, schemaFileText());
  writeFileSync(README_FILE, withConfigReference(readFileSync(README_FILE, 'utf8')));
  console.log(`wrote ${SCHEMA_FILE} and the config reference in ${README_FILE}`);
}
