// Go's strconv.Quote, as serf's log prints a clock value it could not parse: over raw bytes
// (invalid UTF-8 as \xNN), with Go 1.19's own IsPrint tables (src/serf/_go_isprint.ts).
import { IS_NOT_PRINT_16, IS_NOT_PRINT_32, IS_PRINT_16, IS_PRINT_32 } from "./_go_isprint.ts";

/** The smallest i with a[i] >= x, or a.length (Go's bsearch16/bsearch32). */
function bsearch(a: readonly number[], x: number): number {
  let i = 0, j = a.length;
  while (i < j) {
    const h = (i + j) >>> 1;
    if (a[h]! < x) i = h + 1;
    else j = h;
  }
  return i;
}

/**
 * Go 1.19's strconv.IsPrint, on its own Unicode 13.0.0 tables: V8's Unicode is newer, and a
 * rune added since would print where serf's log escapes it.
 */
export function goIsPrint(r: number): boolean {
  if (r <= 0xff) return (r >= 0x20 && r <= 0x7e) || (r >= 0xa1 && r <= 0xff && r !== 0xad);
  const small = r < 0x10000;
  const ranges = small ? IS_PRINT_16 : IS_PRINT_32;
  const i = bsearch(ranges, r);
  if (i >= ranges.length || r < ranges[i & ~1]! || ranges[i | 1]! < r) return false;
  if (r >= 0x20000) return true;
  const exceptions = small ? IS_NOT_PRINT_16 : IS_NOT_PRINT_32;
  const x = small ? r : r - 0x10000;
  const j = bsearch(exceptions, x);
  return j >= exceptions.length || exceptions[j] !== x;
}

/** Go's strconv.Quote over raw bytes (invalid UTF-8 becomes `\xNN`, as in Go). */
export function goQuote(bytes: Uint8Array): string {
  // Pieces joined once: `out +=` a rune at a time made a rope of ~16 bytes of heap a byte,
  // which a warning kept (a 4,000-byte clock line: 64 KB).
  const out: string[] = ['"'];
  let i = 0;
  while (i < bytes.length) {
    const [r, width] = decodeRune(bytes, i);
    i += width;
    if (r < 0) {
      out.push(`\\x${hex(bytes[i - 1]!, 2)}`);
      continue;
    }
    if (r === 0x22 || r === 0x5c) {
      out.push(`\\${String.fromCodePoint(r)}`);
      continue;
    }
    if (goIsPrint(r)) {
      out.push(String.fromCodePoint(r));
      continue;
    }
    switch (r) {
      case 0x07:
        out.push("\\a");
        break;
      case 0x08:
        out.push("\\b");
        break;
      case 0x0c:
        out.push("\\f");
        break;
      case 0x0a:
        out.push("\\n");
        break;
      case 0x0d:
        out.push("\\r");
        break;
      case 0x09:
        out.push("\\t");
        break;
      case 0x0b:
        out.push("\\v");
        break;
      default:
        if (r < 0x20 || r === 0x7f) out.push(`\\x${hex(r, 2)}`);
        else if (r < 0x10000) out.push(`\\u${hex(r, 4)}`);
        else out.push(`\\U${hex(r, 8)}`);
    }
  }
  out.push('"');
  return out.join("");
}

function hex(n: number, digits: number): string {
  return n.toString(16).padStart(digits, "0");
}

/** Go's utf8.DecodeRune: [rune, width], rune -1 (width 1) for an invalid encoding. */
export function decodeRune(b: Uint8Array, i: number): [number, number] {
  const b0 = b[i]!;
  if (b0 < 0x80) return [b0, 1];
  const cont = (k: number): number => {
    const c = b[i + k];
    return c !== undefined && (c & 0xc0) === 0x80 ? c & 0x3f : -1;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    const c1 = cont(1);
    return c1 < 0 ? [-1, 1] : [((b0 & 0x1f) << 6) | c1, 2];
  }
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const c1 = cont(1);
    const c2 = cont(2);
    if (c1 < 0 || c2 < 0) return [-1, 1];
    const r = ((b0 & 0x0f) << 12) | (c1 << 6) | c2;
    if (r < 0x800 || (r >= 0xd800 && r <= 0xdfff)) return [-1, 1];
    return [r, 3];
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const c1 = cont(1);
    const c2 = cont(2);
    const c3 = cont(3);
    if (c1 < 0 || c2 < 0 || c3 < 0) return [-1, 1];
    const r = ((b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3;
    if (r < 0x10000 || r > 0x10ffff) return [-1, 1];
    return [r, 4];
  }
  return [-1, 1];
}
