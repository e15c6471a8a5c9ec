/** A stable identity for a resolved config: independent of key order and of how numbers were written (0.5 == 5e-1). */
import { createHash } from 'node:crypto';
import { RESULT_NEUTRAL_PATHS } from '../../models/index.js';

/** JSON with object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(Object.is(value, -0) ? 0 : value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** 16 hex digits of the SHA-256 of the canonical JSON, leaving out the fields that cannot change results. */
export function configHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(withoutNeutralFields(config))).digest('hex').slice(0, 16);
}

/** config without RESULT_NEUTRAL_PATHS (a copy; anything that is not a config object is returned as it is). */
function withoutNeutralFields(config: unknown): unknown {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return config;
  const out = structuredClone(config) as Record<string, unknown>;
  for (const path of RESULT_NEUTRAL_PATHS) {
    const keys = path.split('.');
    let node: unknown = out;
    for (const k of keys.slice(0, -1)) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined;
    if (node !== null && typeof node === 'object') delete (node as Record<string, unknown>)[keys[keys.length - 1]];
  }
  return out;
}
