// The serf snapshot records and their validation, shared by both file formats.
import { decodeRune } from "./_go_quote.ts";

/**
 * One record of a serf membership snapshot, as {@link Snapshotter.append} takes it.
 *
 * - `alive`: node `name` is alive at `addr` (`HOST:PORT`); replay keeps the last address.
 * - `not-alive`: node `name` left or failed; replay removes it.
 * - `clock`, `event-clock`, `query-clock`: a Lamport clock (uint64, as a bigint); replay
 *   keeps the last value written.
 * - `leave`: this node left the cluster; replay clears everything unless `rejoinAfterLeave`.
 * - `coordinate`: a network coordinate (serf writes JSON); written, ignored on replay.
 * - `comment`: free text; ignored on replay.
 */
export type SnapshotRecord =
  | { type: "alive"; name: string; addr: string }
  | { type: "not-alive"; name: string }
  | { type: "clock" | "event-clock" | "query-clock"; value: bigint }
  | { type: "leave" }
  | { type: "coordinate"; text: string }
  | { type: "comment"; text: string };

/** Longest node name or address in the binary format, in UTF-8 bytes (a u16 length). */
export const NAME_BYTES_MAX = 65535;

/**
 * ignoreBOM: a name may begin with U+FEFF, which the default decoder strips as a byte-order
 * mark (two names would become one).
 */
const lenientDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Decodes a name, an address or a line as Go does where serf's own output shows it (its JSON,
 * its log): valid UTF-8 as it is, and each byte that does not begin a whole valid sequence as
 * one U+FFFD (Go's utf8.DecodeRune). The WHATWG decoder of TextDecoder writes one U+FFFD for a
 * sequence cut short (`E2 82` then `A`: one, where Go writes two), so on such names it would
 * disagree with serf.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  // No U+FFFD in the lenient result: the bytes were valid UTF-8. (Not a fatal decoder in a
  // try: a thrown TypeError costs ~60 us, and a replay decodes every alive name this way.)
  const lenient = lenientDecoder.decode(bytes);
  if (!lenient.includes("\ufffd")) return lenient;
  // Invalid bytes, or a U+FFFD written as such: one pass in Go's way, collecting UTF-16 code
  // units (a TextDecoder call for each valid run between bad bytes cost ~1 us a run).
  const units: number[] = [];
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!;
    if (b < 0x80) {
      units.push(b);
      i++;
      continue;
    }
    const [rune, width] = decodeRune(bytes, i);
    if (rune < 0) units.push(0xfffd);
    else if (rune < 0x10000) units.push(rune);
    else units.push(0xd800 + ((rune - 0x10000) >> 10), 0xdc00 + ((rune - 0x10000) & 0x3ff));
    i += width;
  }
  let out = "";
  // fromCharCode in slices: a call's arguments are bounded.
  for (let k = 0; k < units.length; k += 8192) out += String.fromCharCode(...units.slice(k, k + 8192));
  return out;
}

/** Exact UTF-8 length of `s` as TextEncoder writes it (a lone surrogate becomes 3 bytes). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a pair: 2 units, 4 bytes
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

/** Throws TypeError unless `value` is a string. */
export function checkString(what: string, field: string, value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot append ${what} record: ${field} must be a string, got ${typeName(value)}`);
  }
}

/**
 * True if `value` is in 0..2^64-1. One asUintN instead of two comparisons: V8 compiles it to
 * a truncation, while a comparison with 2^64-1 (not a 64-bit BigInt) takes the generic path,
 * ~20 ns a clock record.
 */
export function isUint64(value: bigint): boolean {
  return BigInt.asUintN(64, value) === value;
}

/** Throws TypeError/RangeError unless `value` is a bigint in 0..2^64-1. */
export function checkClock(
  what: string,
  value: unknown,
  from: "record" | "event" = "record",
): asserts value is bigint {
  // A record's clock is its `value`; an event's (handleEvent) is its Lamport time, `ltime`.
  const [verb, noun, field] = from === "record"
    ? ["append", "record", "value"]
    : ["handle", "event", "ltime"];
  if (typeof value !== "bigint") {
    throw new TypeError(`Cannot ${verb} ${what} ${noun}: ${field} must be a bigint, got ${typeName(value)}`);
  }
  if (!isUint64(value)) {
    throw new RangeError(`Cannot ${verb} ${what} ${noun}: ${field} ${value} is outside 0..2^64-1`);
  }
}

/** Throws TypeError unless `record` is an object with a known `type`. */
export function checkRecordShape(record: unknown): asserts record is SnapshotRecord {
  if (typeof record !== "object" || record === null) {
    throw new TypeError(`Cannot append record: record must be an object, got ${typeName(record)}`);
  }
  const type = (record as { type?: unknown }).type;
  switch (type) {
    case "alive":
    case "not-alive":
    case "clock":
    case "event-clock":
    case "query-clock":
    case "leave":
    case "coordinate":
    case "comment":
      return;
    default:
      throw new TypeError(`Cannot append record: unknown type ${JSON.stringify(type)}`);
  }
}

/**
 * A plain copy of `record` with each field read once: the checks and the encoder then see the
 * same values (a getter or a Proxy could hand the check one name and the encoder another, with
 * a newline in it). Throws TypeError as {@link checkRecordShape}.
 */
export function ownRecord(record: unknown): SnapshotRecord {
  if (typeof record !== "object" || record === null) {
    throw new TypeError(`Cannot append record: record must be an object, got ${typeName(record)}`);
  }
  const r = record as Record<string, unknown>;
  const type = r.type;
  switch (type) {
    case "alive":
      return { type, name: r.name, addr: r.addr } as SnapshotRecord;
    case "not-alive":
      return { type, name: r.name } as SnapshotRecord;
    case "clock":
    case "event-clock":
    case "query-clock":
      return { type, value: r.value } as SnapshotRecord;
    case "leave":
      return { type };
    case "coordinate":
    case "comment":
      return { type, text: r.text } as SnapshotRecord;
    default:
      throw new TypeError(`Cannot append record: unknown type ${JSON.stringify(type)}`);
  }
}

/** A short name for a value's type, for error messages. */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}
