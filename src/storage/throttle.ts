/**
 * A token bucket that holds a process's transfers to a rate in bytes a second
 * (backup_max_bandwidth, restore_max_bandwidth). Shared by every request of
 * one direction, so the limit is the process's, whatever the concurrency.
 */
export class Throttle {
  private available: number;
  private last = performance.now();
  /** Waiters are served in order, so a large take cannot starve behind small ones. */
  private queue: Promise<void> = Promise.resolve();

  /** `burst`: bytes that may go at once after an idle spell (at least one slice). */
  constructor(
    readonly bytesPerSecond: number,
    private readonly burst = Math.max(64 * 1024, bytesPerSecond / 10),
  ) {
    this.available = this.burst;
  }

  /** Resolves when `bytes` may be sent (or have been received). */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(() => this.wait(bytes, signal));
    this.queue = turn.catch(() => {});
    return turn;
  }

  private async wait(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = performance.now();
      this.available = Math.min(this.burst, this.available + ((now - this.last) / 1000) * this.bytesPerSecond);
      this.last = now;
      if (this.available >= Math.min(bytes, this.burst)) {
        // A take larger than the burst goes into debt: the next waiter pays for it.
        this.available -= bytes;
        return;
      }
      const ms = ((Math.min(bytes, this.burst) - this.available) / this.bytesPerSecond) * 1000;
      await new Promise(r => setTimeout(r, Math.max(1, Math.ceil(ms))));
    }
  }
}

/** Slices of this size are throttled one at a time: small enough to keep the rate smooth. */
export const THROTTLE_SLICE = 64 * 1024;
