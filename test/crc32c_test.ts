import assert from "node:assert/strict";
import { crc32c } from "../mod.ts";
import { crc32cBitwise, crc32cBytewise, crc32cSlicing8 } from "../src/core/_crc32c_js.ts";
import { decodeBase64 } from "../src/_wasm/core.ts";
import { WASM_BASE64 } from "../src/_wasm/wasm.generated.ts";
import { Rng, testSeed } from "./_rng.ts";
import { withTempDir } from "./_tmp.ts";

const enc = new TextEncoder();

// RFC 3720 appendix B.4 test vectors, and the common check value.
const VECTORS: Array<[string, Uint8Array, number]> = [
  ["32 zero bytes", new Uint8Array(32), 0x8a9136aa],
  ["32 0xff bytes", new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ["bytes 0..31", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ["bytes 31..0", Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
  ['"123456789"', enc.encode("123456789"), 0xe3069283],
  ["empty", new Uint8Array(0), 0],
];

Deno.test("crc32c matches the RFC 3720 B.4 vectors", () => {
  for (const [name, data, want] of VECTORS) {
    assert.equal(crc32c(data), want, name);
    assert.equal(crc32cBytewise(data), want, `reference: ${name}`);
    assert.equal(crc32cSlicing8(data), want, `slicing-8 reference: ${name}`);
    assert.equal(crc32cBitwise(data), want, `bitwise: ${name}`);
  }
});

Deno.test("crc32c's table-free path (short inputs before the tables exist) agrees with the tables", () => {
  // crc32cSlicing8 takes crc32cBitwise for inputs up to 32 bytes until its tables are built,
  // which the tests above have done by now: compare the two directly, seeds included.
  const rng = new Rng(testSeed("crc32c bitwise"));
  for (let n = 0; n <= 40; n++) {
    const data = rng.bytes(n);
    const seed = rng.u32();
    assert.equal(crc32cBitwise(data, seed), crc32cBytewise(data, seed), `length ${n}, seed ${seed}`);
  }
});

Deno.test("crc32c extended chunk by chunk equals one shot around 8/16/64-byte edges", () => {
  const rng = new Rng(testSeed("crc32c chunked"));
  const lengths = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1023, 1024, 1025];
  for (const n of lengths) {
    const data = rng.bytes(n);
    const whole = crc32c(data);
    assert.equal(whole, crc32cBytewise(data), `length ${n}`);
    for (const cut of [0, 1, 3, 7, 8, 9, 16, 17, n >> 1, n]) {
      if (cut > n) continue;
      const split = crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)));
      assert.equal(split, whole, `length ${n} split at ${cut}`);
    }
  }
});

Deno.test("crc32c in Wasm is independent of the input's address alignment", async () => {
  const { WasmCore } = await import("../src/_wasm/core.ts");
  const core = new WasmCore();
  const rng = new Rng(testSeed("crc32c alignment"));
  const data = rng.bytes(200);
  const base = core.alloc(256);
  for (let shift = 0; shift < 16; shift++) {
    for (const n of [0, 1, 7, 8, 15, 16, 17, 100, 200]) {
      core.u8.set(data.subarray(0, n), base + shift);
      const got = core.exports.crc32c_update(0, base + shift, n) >>> 0;
      assert.equal(got, crc32cBytewise(data.subarray(0, n)), `shift ${shift}, length ${n}`);
    }
  }
});

Deno.test("crc32c agrees with the TypeScript reference on seeded random input", () => {
  const rng = new Rng(testSeed("crc32c differential"));
  for (let i = 0; i < 300; i++) {
    const n = rng.int(i < 250 ? 300 : 600_000); // a few inputs larger than the 256 KiB copy chunk
    const data = rng.bytes(n);
    const seed = rng.u32();
    assert.equal(crc32c(data, seed), crc32cBytewise(data, seed), `length ${n}, seed ${seed}`);
  }
});

Deno.test("crc32c rejects bad arguments with TypeError and RangeError", () => {
  assert.throws(() => crc32c("abc" as unknown as Uint8Array), TypeError);
  assert.throws(() => crc32c(new Uint16Array(2) as unknown as Uint8Array), TypeError);
  assert.throws(() => crc32c(new Uint8Array(1), 1.5), TypeError);
  assert.throws(() => crc32c(new Uint8Array(1), "1" as unknown as number), TypeError);
  assert.throws(() => crc32c(new Uint8Array(1), -1), RangeError);
  assert.throws(() => crc32c(new Uint8Array(1), 2 ** 32), RangeError);
});

Deno.test("crc32c from two Wasm instances does not share state", async () => {
  const { WasmCore } = await import("../src/_wasm/core.ts");
  const a = new WasmCore();
  const b = new WasmCore();
  const pa = a.alloc(64);
  const pb = b.alloc(64);
  a.u8.set(enc.encode("123456789"), pa);
  b.u8.set(new Uint8Array(32), pb);
  assert.equal(a.exports.crc32c_update(0, pa, 9) >>> 0, 0xe3069283);
  assert.equal(b.exports.crc32c_update(0, pb, 32) >>> 0, 0x8a9136aa);
  assert.notEqual(a.exports.memory, b.exports.memory);
});

Deno.test("crc32c loads its Wasm without any permission", async () => {
  // As a JSR import would: no --allow-* flags at all, so reading a .wasm file or fetching it
  // would fail. The module is embedded in src/_wasm/wasm.generated.ts.
  const code = `import { crc32c } from "${new URL("../mod.ts", import.meta.url).href}";
console.log(crc32c(new TextEncoder().encode("123456789".repeat(40))).toString(16));`;
  const out = await withTempDir(async (dir) => {
    const script = `${dir}/no_permissions.ts`;
    await Deno.writeTextFile(script, code);
    // `deno run` without --allow-* flags grants nothing (`deno eval` would grant everything).
    return await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
  });
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const want = crc32cBytewise(new TextEncoder().encode("123456789".repeat(40))).toString(16);
  assert.equal(new TextDecoder().decode(out.stdout).trim(), want);
});

Deno.test("the embedded module decodes the same natively and by the portable path", () => {
  const native = decodeBase64(WASM_BASE64);
  assert.deepEqual(native, decodeBase64(WASM_BASE64, false));
  assert.deepEqual([...native.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]); // "\0asm"
  for (const s of ["", "AA==", "AAE=", "AAEC", "/+8="]) {
    assert.deepEqual(decodeBase64(s), decodeBase64(s, false), s);
  }
});
