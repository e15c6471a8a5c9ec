/**
 * The slice of better-sqlite3 the report uses, typed here: the report depends on these few calls only, not on the
 * shape of @types/better-sqlite3.
 */
import { createRequire } from 'node:module';

export interface Statement<Row> {
  all(...params: unknown[]): Row[];
  get(...params: unknown[]): Row | undefined;
  iterate(...params: unknown[]): IterableIterator<Row>;
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  /** With raw(true), rows come back as arrays in column order: cheaper for large scans. */
  raw(toggle?: boolean): Statement<unknown[]>;
}

export interface Database {
  prepare<Row = Record<string, unknown>>(sql: string): Statement<Row>;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): Database;
  transaction<F extends (...args: never[]) => unknown>(fn: F): F;
  close(): void;
  readonly open: boolean;
}

interface DatabaseConstructor {
  new (path: string, options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number }): Database;
}

const require = createRequire(import.meta.url);
const BetterSqlite3 = require('better-sqlite3') as DatabaseConstructor;

/** Opens a database for reading only; sweeps may keep writing to it (WAL) while a report is built. */
export function openReadOnly(path: string): Database {
  return new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: 5000 });
}

/** Opens (creating) a writable database: for fixtures in tests and the benchmark only. */
export function openWritable(path: string): Database {
  return new BetterSqlite3(path);
}
