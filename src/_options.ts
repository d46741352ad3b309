// Checks of the option values that are objects (a file system, a clock), shared by every
// entry point that takes them, so a wrong one fails at once with the option's name instead
// of later, mid-operation, with "x is not a function".
import { type Clock, systemClock } from "./clock.ts";
import { denoFs } from "./fs/deno_fs.ts";
import type { FileSystem } from "./fs/types.ts";
import { typeName } from "./serf/records.ts";

function hasMethods(value: unknown, names: readonly string[]): boolean {
  return typeof value === "object" && value !== null &&
    names.every((n) => typeof (value as Record<string, unknown>)[n] === "function");
}

/**
 * The `fs` option: undefined gives {@link denoFs}.
 *
 * @throws {TypeError} Naming `action` if it is not a FileSystem.
 */
export function fsOption(action: string, value: unknown): FileSystem {
  if (value === undefined) return denoFs;
  if (!hasMethods(value, ["open", "stat", "rename", "remove", "syncDir"])) {
    throw new TypeError(
      `Cannot ${action}: fs must be a FileSystem (open, stat, rename, remove, syncDir), got ${
        typeName(value)
      }`,
    );
  }
  return value as FileSystem;
}

/**
 * An option that takes one of a few strings: undefined gives `def`.
 *
 * @throws {TypeError} Naming `action` and the allowed values otherwise.
 */
export function choiceOption<T extends string>(
  action: string,
  name: string,
  value: unknown,
  def: T,
  allowed: readonly T[],
): T {
  if (value === undefined) return def;
  if (!allowed.includes(value as T)) {
    const list = allowed.map((a) => `"${a}"`);
    throw new TypeError(
      `Cannot ${action}: ${name} must be ${list.slice(0, -1).join(", ")} or ${list.at(-1)}, got ${
        typeof value === "string" ? JSON.stringify(value) : typeName(value)
      }`,
    );
  }
  return value as T;
}

/** The recovery modes of a binary replay. */
export const RECOVERY_MODES = ["truncate-tail", "strict", "salvage"] as const;
/** A snapshot's format, or "auto" to detect it. */
export const FORMAT_CHOICES = ["auto", "binary", "go-text"] as const;

/**
 * The `clock` option: undefined gives {@link systemClock}.
 *
 * @throws {TypeError} Naming `action` if it is not a Clock.
 */
export function clockOption(action: string, value: unknown): Clock {
  if (value === undefined) return systemClock;
  if (!hasMethods(value, ["now", "setTimeout", "clearTimeout"])) {
    throw new TypeError(
      `Cannot ${action}: clock must be a Clock (now, setTimeout, clearTimeout), got ${typeName(value)}`,
    );
  }
  return value as Clock;
}

/**
 * Refuses option keys the entry point does not know. A misspelt option would otherwise be
 * ignored without a word, and for a log that means a default the caller did not choose
 * (`{ sycn: "always" }` is a log that acknowledges records before they are on disk).
 * `known` is a record of every key, so the compiler checks it against the options type.
 *
 * @throws {TypeError} Naming `action`, the unknown key, and a known key it resembles.
 */
export function knownOptionKeys(
  action: string,
  options: object,
  known: Readonly<Record<string, true>>,
): void {
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const folded = key.toLowerCase();
    const near = Object.keys(known).find((k) => k.toLowerCase() === folded);
    throw new TypeError(
      `Cannot ${action}: unknown option ${JSON.stringify(key)}${
        near === undefined ? ` (known: ${Object.keys(known).join(", ")})` : `; did you mean "${near}"?`
      }`,
    );
  }
}
