// Argument checks shared by the FileSystem implementations (denoFs, MemFs): a position, a
// length, a buffer, a path or an open mode that is not what it should be is a TypeError or a
// RangeError before any I/O. (A NaN truncate length emptied a file; a NaN or fractional write
// position wrote at offset 0 or rounded down; a mode of -1 created a setuid, world-writable file.)
import type { OpenOptions } from "./types.ts";

function describe(value: unknown): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null) return "null";
  return typeof value;
}

/** Throws unless `value` is a non-negative safe integer (a file position or length). */
export function checkPosition(
  action: string,
  path: string,
  value: unknown,
  what = "position",
): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`Cannot ${action} "${path}": ${what} must be a number, got ${describe(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Cannot ${action} "${path}": ${what} must be a non-negative integer, got ${value}`);
  }
}

/** Throws TypeError unless `value` is a Uint8Array. */
export function checkBytes(
  action: string,
  path: string,
  value: unknown,
  what: string,
): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Cannot ${action} "${path}": ${what} must be a Uint8Array, got ${describe(value)}`);
  }
}

/** Throws TypeError unless `path` is a string without NUL bytes, non-empty unless `empty` ("" is the cwd). */
export function checkPath(action: string, path: unknown, empty = false): asserts path is string {
  if (typeof path !== "string" || (path === "" && !empty) || path.includes("\0")) {
    const got = typeof path === "string" ? JSON.stringify(path) : describe(path);
    throw new TypeError(
      `Cannot ${action}: the path must be a non-empty string without NUL bytes, got ${got}`,
    );
  }
}

/** Throws unless `options` is an object whose `mode`, if any, is a permission mode 0..0o777. */
export function checkOpenOptions(path: string, options: unknown): asserts options is OpenOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Cannot open "${path}": options must be an object, got ${describe(options)}`);
  }
  const mode = (options as OpenOptions).mode;
  if (mode === undefined) return;
  if (typeof mode !== "number") {
    throw new TypeError(`Cannot open "${path}": mode must be a number, got ${describe(mode)}`);
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) {
    throw new RangeError(`Cannot open "${path}": mode must be an integer in 0..0o777, got ${mode}`);
  }
}
