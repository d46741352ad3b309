// The few path operations snaplog needs: a file's directory (for the directory fsyncs) and the
// canonical path of a file (for the writer lock, src/fs/lock.ts). node:path has them, and with
// JSR reachable @std/path would be the obvious choice, but importing node:path loads Deno's
// Node compatibility layer: 20-25 ms of a fresh process's start-up on this project's machine,
// as much as all the rest of snaplog's import.

const WINDOWS = Deno.build.os === "windows";
const SEP = WINDOWS ? "\\" : "/";

/**
 * Index of the last separator in `path`, or -1: `/`, and on Windows `\` as well. On other
 * systems `\` is an ordinary character of a name (`a\b.snap` is a file in the directory).
 */
function lastSep(path: string): number {
  const slash = path.lastIndexOf("/");
  return WINDOWS ? Math.max(slash, path.lastIndexOf("\\")) : slash;
}

/** The directory part of `path`: `.` for a bare name, `/` for a file in the root. */
export function dirOf(path: string): string {
  const i = lastSep(path);
  return i < 0 ? "." : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** The last part of `path`. */
export function baseOf(path: string): string {
  return path.slice(lastSep(path) + 1);
}

/** `name` inside directory `dir`. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") || (WINDOWS && dir.endsWith("\\")) ? dir + name : dir + SEP + name;
}

/** True if `path` does not depend on the working directory. */
export function isAbsolutePath(path: string): boolean {
  if (path.startsWith("/")) return true;
  // Windows: a drive (`C:\`, `C:/`) or a UNC or device path (`\\server\share`, `\\?\`).
  return WINDOWS && (/^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\"));
}

/** `path` made absolute against the working directory (not normalized). */
export function absolutePath(path: string): string {
  return isAbsolutePath(path) ? path : joinPath(Deno.cwd(), path);
}

/**
 * POSIX normalization of `path` (`.` and `..` segments and repeated `/` resolved lexically):
 * the namespace of a file system other than the real one (an in-memory one in tests), where
 * `./d/../d/x` and `d/x` must name one file.
 */
export function normalizePosix(path: string): string {
  const rooted = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  return rooted ? "/" + joined : joined === "" ? "." : joined;
}
