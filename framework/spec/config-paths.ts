/** Dotted config paths ('mask.image_ratio') to and from nested config objects. */
import { configPaths, schemaAtPath } from './config-schema.js';

export const CONFIG_PATHS: readonly string[] = configPaths();

export function isConfigPath(path: string): boolean {
  return schemaAtPath(path) !== null;
}

/** True when the path names a group of fields (data, model.image, ...) rather than one field. */
export function isConfigGroup(path: string): boolean {
  return schemaAtPath(path)?.properties !== undefined;
}

/** Leaf paths and values of a nested partial config; values under a group path are spread into their fields. */
export function flattenConfig(value: unknown, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return out;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const path = prefix + key;
    if (isConfigGroup(path) && v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flattenConfig(v, path + '.'));
    else out[path] = v;
  }
  return out;
}

/** A copy of `target` with the value at a dotted path set (intermediate objects created as needed). */
export function setPath<T extends Record<string, unknown>>(target: T, path: string, value: unknown): T {
  const parts = path.split('.');
  const root: Record<string, unknown> = { ...target };
  let node = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const child = node[parts[i]];
    node[parts[i]] = child !== null && typeof child === 'object' && !Array.isArray(child) ? { ...(child as object) } : {};
    node = node[parts[i]] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]] = value;
  return root as T;
}

export function getPath(source: unknown, path: string): unknown {
  let v = source;
  for (const p of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  return v;
}
