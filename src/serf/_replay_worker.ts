// The Worker of a parallel replay (src/serf/_parallel.ts): replays the second half of a
// snapshot into a delta state and posts it back, its buffers transferred, not copied.
import { type DeltaReply, type DeltaRequest, replayDelta } from "./_parallel.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<DeltaRequest>) => void) | null;
  postMessage(message: unknown, transfer: Transferable[]): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (e: MessageEvent<DeltaRequest>): Promise<void> => {
  let reply: DeltaReply;
  try {
    reply = await replayDelta(e.data);
  } catch (err) {
    reply = { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  const transfer = reply.ok
    ? [reply.delta.bytes.buffer as ArrayBuffer, reply.delta.entries.buffer as ArrayBuffer]
    : [];
  scope.postMessage(reply, transfer);
};
