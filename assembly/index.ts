// The snaplog WebAssembly core: pure byte work, no I/O, no clock, no imports.
// Every export takes pointers into this module's memory and returns numbers;
// memory is handed out by mem_alloc (assembly/mem.ts) to host and Wasm alike.

export { crc32c_update } from "./crc32c";
export {
  all_zero,
  encode_bytes,
  encode_count,
  frame_finish,
  frame_salt_of,
  frames_encode,
  frames_resync,
  resync_cut,
  frames_scan,
  frames_seal,
  scan_count,
  scan_frame_end,
  scan_offset,
} from "./frame";

export { all_ascii, mem_alloc, mem_free, mem_used } from "./mem";
export * from "./serf_state";
export * from "./gotext";
export * from "./serf_binary";
export * from "./compact";
