// Timers behind a seam, so every timed behaviour (flush interval, fsync interval, the
// member-clock tick, compaction back-off, close timeouts) is driven by tests without a
// single sleep. Serf's own snapshot tests sleep, and one is skipped as flaky.

/** The timer functions a log uses. Inject {@link ManualClock} in tests. */
export interface Clock {
  /** Milliseconds since some fixed point. */
  now(): number;
  /**
   * Runs `fn` once after `ms` milliseconds. The timer must not keep the process alive
   * (a log's background flush is no reason to delay exit).
   */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer from {@link Clock.setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock: `setTimeout` with the timer unref'd, so it never keeps the process alive.
 *
 * @example
 * ```ts
 * import { systemClock } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof systemClock.now(), "number");
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number): unknown {
    checkTimer(fn, ms);
    const id = setTimeout(fn, ms);
    Deno.unrefTimer(id);
    return id;
  },
  clearTimeout(handle: unknown): void {
    clearTimeout(handle as number);
  },
};

/** Throws unless `fn` is a function and `ms` a delay (a number that is not NaN; negative means 0). */
function checkTimer(fn: unknown, ms: unknown): void {
  if (typeof fn !== "function") throw new TypeError(`Cannot set a timer: the callback must be a function`);
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new TypeError(
      `Cannot set a timer: the delay must be a number, got ${typeof ms === "number" ? ms : typeof ms}`,
    );
  }
}

/**
 * A clock that moves only when told to: {@link ManualClock.advance} runs every timer that
 * falls due, in order. For tests.
 *
 * @example Fire a timer without waiting
 * ```ts
 * import { ManualClock } from "@snaplog/snaplog";
 * import assert from "node:assert/strict";
 *
 * const clock = new ManualClock();
 * let fired = 0;
 * clock.setTimeout(() => fired++, 500);
 * clock.advance(499);
 * assert.equal(fired, 0);
 * clock.advance(1);
 * assert.equal(fired, 1);
 * ```
 */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();

  /**
   * The manual time: 0 at construction, moved only by {@link ManualClock.advance}.
   *
   * @returns The current manual time in milliseconds.
   */
  now(): number {
    return this.#now;
  }

  /**
   * Schedules `fn` to run when {@link ManualClock.advance} passes `ms` from now.
   *
   * @param fn The callback.
   * @param ms Delay in milliseconds (a negative delay is 0).
   * @returns A handle for {@link ManualClock.clearTimeout}.
   * @throws {TypeError} If `fn` is not a function or `ms` is not a number (NaN included).
   */
  setTimeout(fn: () => void, ms: number): unknown {
    checkTimer(fn, ms);
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  /**
   * Cancels a timer that has not fired.
   *
   * @param handle A handle from {@link ManualClock.setTimeout}.
   */
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing due timers in time order (timers they set that fall
   * due within the same advance fire too).
   *
   * @param ms Milliseconds to advance: a finite number, 0 or more (time never runs backwards).
   * @throws {TypeError} If `ms` is not a number.
   * @throws {RangeError} If `ms` is negative, NaN or infinite.
   */
  advance(ms: number): void {
    if (typeof ms !== "number") {
      throw new TypeError(`Cannot advance the clock: ms must be a number, got ${typeof ms}`);
    }
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`Cannot advance the clock: ms must be a finite number, 0 or more, got ${ms}`);
    }
    const target = this.#now + ms;
    // Bounded: each pass fires one timer, and a timer set for "now" cannot starve the loop
    // because time only moves forward.
    for (let guard = 0; guard < 1_000_000; guard++) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && t.at < nextAt) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId < 0) break;
      const t = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#now = Math.max(this.#now, t.at);
      t.fn();
    }
    this.#now = target;
  }
}
