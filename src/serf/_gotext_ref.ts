// A plain TypeScript transcription of serf's Snapshotter.replay (serf/snapshot.go, v0.9),
// line for line, over a whole file in memory. Tests only: the differential reference for
// the chunked Wasm scan in ./gotext.ts. Bytes are held as "binary" strings (one char per
// byte), so Go's byte-wise string operations map one to one onto JS string methods.
import type { ReplayWarning, SnapshotState } from "./types.ts";
import { goIsPrint } from "./_go_quote.ts";

const MAX_UINT64 = (1n << 64n) - 1n;

function toBinary(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

function fromBinary(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Decodes a binary string as Go's utf8.DecodeRune walks it (serf's JSON and log show names so):
 * the shortest prefix a strict decoder takes is a rune; where none of 1..4 bytes is, that byte
 * is one U+FFFD.
 */
function utf8(s: string): string {
  const b = fromBinary(s);
  let out = "";
  for (let i = 0; i < b.length;) {
    let width = 0;
    for (let w = 1; w <= 4 && i + w <= b.length && width === 0; w++) {
      try {
        out += fatal.decode(b.subarray(i, i + w));
        width = w;
      } catch { /* not a whole sequence of this width */ }
    }
    if (width === 0) {
      out += "\ufffd";
      width = 1;
    }
    i += width;
  }
  return out;
}

/** Go's strconv.ParseUint(s, 10, 64), returning the value or Go's error text. */
function parseUint(s: string): bigint | string {
  const q = goQuote(s);
  if (s === "") return `strconv.ParseUint: parsing ${q}: invalid syntax`;
  let n = 0n;
  for (const c of s) {
    if (c < "0" || c > "9") return `strconv.ParseUint: parsing ${q}: invalid syntax`;
    n = n * 10n + BigInt(c.charCodeAt(0) - 48);
    if (n > MAX_UINT64) return `strconv.ParseUint: parsing ${q}: value out of range`;
  }
  return n;
}

/** Go's strconv.Quote of a binary string. */
function goQuote(s: string): string {
  const b = fromBinary(s);
  let out = '"';
  let i = 0;
  while (i < b.length) {
    let rune = -1;
    let width = 1;
    for (let w = 1; w <= 4 && i + w <= b.length; w++) {
      try {
        const t = fatal.decode(b.subarray(i, i + w));
        rune = t.codePointAt(0)!;
        width = w;
        break;
      } catch { /* not a complete sequence of this width */ }
    }
    i += width;
    if (rune === -1) {
      out += "\\x" + b[i - 1]!.toString(16).padStart(2, "0");
    } else if (rune === 34 || rune === 92) {
      out += "\\" + String.fromCharCode(rune);
    } else if (goIsPrint(rune)) {
      // Go's IsPrint is "L, M, N, P, S or U+0020", but on Go 1.19's Unicode 13 tables: V8's
      // /\p{L}/u is newer (U+061D, for one, prints here and not in serf's log). The table is
      // checked rune by rune against the real Go where Go is installed (gotext_test.ts).
      out += String.fromCodePoint(rune);
    } else {
      const named: Record<number, string> = { 7: "a", 8: "b", 12: "f", 10: "n", 13: "r", 9: "t", 11: "v" };
      if (named[rune] !== undefined) out += "\\" + named[rune];
      else if (rune < 32 || rune === 127) out += "\\x" + rune.toString(16).padStart(2, "0");
      else if (rune < 0x10000) out += "\\u" + rune.toString(16).padStart(4, "0");
      else out += "\\U" + rune.toString(16).padStart(8, "0");
    }
  }
  return out + '"';
}

/** Replays a whole Go text snapshot the way serf v0.9 does. */
export function replayGoTextRef(bytes: Uint8Array, rejoinAfterLeave: boolean): SnapshotState {
  const file = toBinary(bytes);
  let aliveNodes = new Map<string, string>();
  let lastClock = 0n;
  let lastEventClock = 0n;
  let lastQueryClock = 0n;
  const warnings: ReplayWarning[] = [];
  let lineNo = 0;
  let pos = 0;
  // reader.ReadString('\n') until it fails: a last line without '\n' is an error, dropped.
  while (true) {
    const nl = file.indexOf("\n", pos);
    if (nl === -1) break;
    let line = file.slice(pos, nl + 1);
    pos = nl + 1;
    lineNo++;
    const warn = (reason: string): void => void warnings.push({ line: lineNo, reason });

    line = line.slice(0, line.length - 1);
    if (line.startsWith("alive: ")) {
      const info = line.slice("alive: ".length);
      const addrIdx = info.lastIndexOf(" ");
      if (addrIdx === -1) {
        warn(`Failed to parse address: ${utf8(line)}`);
        continue;
      }
      aliveNodes.set(info.slice(0, addrIdx), info.slice(addrIdx + 1));
    } else if (line.startsWith("not-alive: ")) {
      aliveNodes.delete(line.slice("not-alive: ".length));
    } else if (line.startsWith("clock: ")) {
      const t = parseUint(line.slice("clock: ".length));
      if (typeof t === "string") {
        warn(`Failed to convert clock time: ${t}`);
        continue;
      }
      lastClock = t;
    } else if (line.startsWith("event-clock: ")) {
      const t = parseUint(line.slice("event-clock: ".length));
      if (typeof t === "string") {
        warn(`Failed to convert event clock time: ${t}`);
        continue;
      }
      lastEventClock = t;
    } else if (line.startsWith("query-clock: ")) {
      const t = parseUint(line.slice("query-clock: ".length));
      if (typeof t === "string") {
        warn(`Failed to convert query clock time: ${t}`);
        continue;
      }
      lastQueryClock = t;
    } else if (line.startsWith("coordinate: ")) {
      continue;
    } else if (line === "leave") {
      if (rejoinAfterLeave) {
        warn("Ignoring previous leave in snapshot");
        continue;
      }
      aliveNodes = new Map();
      lastClock = 0n;
      lastEventClock = 0n;
      lastQueryClock = 0n;
    } else if (line.startsWith("#")) {
      // comment
    } else {
      warn(`Unrecognized snapshot line: ${utf8(line)}`);
    }
  }
  // Binary strings compare byte-wise, which is the order the fixtures use.
  const names = [...aliveNodes.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    format: "go-text",
    aliveNodes: names.map((name) => ({ name: utf8(name), addr: utf8(aliveNodes.get(name)!) })),
    lastClock,
    lastEventClock,
    lastQueryClock,
    records: lineNo,
    bytes: bytes.length,
    tornTailBytes: bytes.length - pos,
    warnings, // the reference lists every warning
    warningsOmitted: 0,
  };
}
