/** Writes framework/spec/experiment.schema.json and the config reference in docs/config.md (`npm run schema`); a test checks both are current. */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withConfigReference } from './config-docs.js';
import { SPEC_SCHEMA } from './spec-schema.js';

export const SCHEMA_FILE = fileURLToPath(new URL('./experiment.schema.json', import.meta.url));
export const CONFIG_DOCS_FILE = fileURLToPath(new URL('../../docs/config.md', import.meta.url));
export const schemaFileText = (): string => JSON.stringify(SPEC_SCHEMA, null, 2) + '\n';

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_FILE, schemaFileText());
  writeFileSync(CONFIG_DOCS_FILE, withConfigReference(readFileSync(CONFIG_DOCS_FILE, 'utf8')));
  console.log(`wrote ${SCHEMA_FILE} and the config reference in ${CONFIG_DOCS_FILE}`);
}
