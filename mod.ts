/**
 * snaplog: an embedded, checksummed append-only log engine for Deno.
 *
 * The byte work (CRC32C, record frames, replay scans) runs in WebAssembly compiled from
 * AssemblyScript and embedded in the package, so importing snaplog needs no permissions.
 *
 * @example Checksum bytes with CRC32C
 * ```ts
 * import { crc32c } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
 * ```
 *
 * @module
 */
export { crc32c } from "./src/core/crc32c.ts";
