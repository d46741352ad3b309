// Random serf text snapshots ("line soups") for differential fuzzing: lines of every kind serf
// knows, the near misses its replay warns about (case, spacing, CR, signs, overflows), and raw
// bytes (invalid UTF-8 included). Shared by the reference fuzz (test/gotext_test.ts) and the
// comparison with the real serf (bench/go/serf_go_test.ts).

const encoder = new TextEncoder();

/**
 * Bytes around the ranges Go's UTF-8 decoder checks (ASCII, continuations, lead bytes and the
 * bounds of their second bytes), so that runes cut short, overlong forms, surrogates and code
 * points past U+10FFFF all come up in random names. No space and no newline.
 */
export const UTF8_EDGE_BYTES: readonly number[] = [
  0x00,
  0x41,
  0x7e,
  0x7f,
  0x80,
  0x8f,
  0x90,
  0x9f,
  0xa0,
  0xbf,
  0xc0,
  0xc2,
  0xc3,
  0xdf,
  0xe0,
  0xe2,
  0xed,
  0xef,
  0xf0,
  0xf4,
  0xf5,
  0xff,
];

function int(r: () => number, n: number): number {
  return Math.floor(r() * n);
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[int(r, xs.length)]!;
}

const NAMES = ["node-a", "node-b", "n", "", "a b", "ünï", "node-a ", " x", "\u{1f600}", "a\tb", "node-c\r"];
const ADDRS = ["10.0.0.1:7946", "[::1]:7946", ":7946", "", "x", "10.0.0.2:1\r"];
const NUMBERS = [
  "0",
  "1",
  "42",
  "0042",
  "18446744073709551615",
  "18446744073709551616",
  "18446744073709551614",
  "99999999999999999999",
  "184467440737095516150",
  "000000000000000000000018446744073709551615",
  "",
  "-1",
  "+1",
  " 1",
  "1 ",
  "1_0",
  "0x10",
  "١",
  "1e3",
  "12\r",
];

function randomLine(r: () => number): string {
  switch (int(r, 14)) {
    case 0:
    case 1:
    case 2:
      return `alive: ${pick(r, NAMES)} ${pick(r, ADDRS)}`;
    case 3:
      return `alive: ${pick(r, NAMES)}`;
    case 4:
    case 5:
      return `not-alive: ${pick(r, NAMES)}`;
    case 6:
    case 7:
      return `${pick(r, ["clock", "event-clock", "query-clock"])}: ${pick(r, NUMBERS)}`;
    case 8:
      return pick(r, ["leave", "leave", "leave ", " leave", "Leave", "leave\r", "leav", "leaves"]);
    case 9:
      return pick(r, [
        "#",
        "# c",
        "#alive: x y",
        " #",
        "coordinate: {}",
        "coordinate:",
        "coordinate: ",
        "coord",
      ]);
    case 10:
      return pick(r, [
        "",
        "alive:",
        "alive: ",
        "not-alive:",
        "not-alive: ",
        "clock:",
        "clock:  1",
        "event-clock:",
        "query-clock: ",
        "x",
        "alive:  ",
        "\r",
        "\xff\xfe",
      ]);
    case 11: {
      // A long line: a name or comment well past any chunk size in use.
      const long = "x".repeat(int(r, 3000));
      return r() < 0.5 ? `alive: ${long} ${pick(r, ADDRS)}` : `# ${long}`;
    }
    case 12:
      return `${pick(r, ["alive: ", "not-alive: ", "clock: ", "event-clock: ", "query-clock: "])}${
        String.fromCharCode(...Array.from({ length: int(r, 12) }, () => int(r, 256)))
      }`;
    default:
      return `${
        pick(r, ["alive", "not-alive", "clock", "event-clock", "query-clock", "leave", "coordinate"])
      }${pick(r, [":", ": ", " ", ":  ", ""])}${pick(r, NAMES)}`;
  }
}

/** Latin-1 line text to bytes, so the fuzz can produce any byte (invalid UTF-8 included). */
function latin1(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

/** A random snapshot file from `r` (uniform in [0, 1)): up to 60 lines, some CRLF, maybe a torn last line. */
export function randomSoup(r: () => number): Uint8Array {
  const out: number[] = [];
  const n = int(r, 60);
  const crlf = r() < 0.2;
  for (let i = 0; i < n; i++) {
    const line = randomLine(r);
    // Names with non-Latin-1 characters go in as UTF-8, everything else byte for byte.
    const bytes = Array.from(line).some((c) => c.codePointAt(0)! > 0xff)
      ? [...encoder.encode(line)]
      : latin1(line);
    out.push(...bytes);
    if (crlf || r() < 0.05) out.push(0x0d);
    out.push(0x0a);
  }
  if (r() < 0.3) out.push(...latin1(randomLine(r)));
  return new Uint8Array(out);
}
