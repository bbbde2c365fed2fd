/**
 * The low-speed limit (low_speed_limit, low_speed_time), as curl's
 * --speed-limit/--speed-time: a transfer that moved fewer than `limit` bytes a
 * second on average over the last `timeMs` is abandoned, and retried as any
 * NetworkError is. It watches only while bytes are expected to move: while a
 * request body is being sent and from an answer's first byte to its end, and
 * not while the plugin itself holds the reading back. The wait for an answer
 * to begin is request_timeout's (an idle timeout); neither limits a whole
 * transfer's length.
 */
import { NetworkError } from './network.js';

export interface LowSpeedLimit {
  /** Bytes a second; 0 turns the limit off. */
  bytesPerSecond: number;
  timeMs: number;
}

/** Samples are taken this often (at most), so a window of T seconds holds a few of them at least. */
const MAX_TICK_MS = 1000;
const MIN_TICK_MS = 50;

export function lowSpeedError(host: string, limit: LowSpeedLimit): NetworkError {
  return new NetworkError(
    `the transfer with ${host} moved less than ${limit.bytesPerSecond} bytes a second for ${limit.timeMs / 1000} s (low_speed_limit, low_speed_time)`,
    'LowSpeed',
  );
}

export class LowSpeedWatch {
  /** (time, bytes moved so far) of the ticks within the window, oldest first. */
  private samples: Array<[number, number]> = [];
  private timer: NodeJS.Timeout | undefined;

  /**
   * `progress()`: bytes moved so far (any monotonic count); `onSlow` is called once, when the
   * average over a whole window is below the limit. While `held()` is true (the plugin's side
   * is not taking the bytes), the window starts over.
   */
  constructor(
    private readonly limit: LowSpeedLimit,
    private readonly progress: () => number,
    private readonly onSlow: () => void,
    private readonly held: () => boolean = () => false,
  ) {}

  get enabled(): boolean {
    return this.limit.bytesPerSecond > 0 && this.limit.timeMs > 0;
  }

  /** Starts (or restarts) watching with a fresh window; nothing happens when already watching. */
  start(): void {
    if (!this.enabled || this.timer) return;
    this.samples = [[Date.now(), this.progress()]];
    const tick = Math.max(MIN_TICK_MS, Math.min(MAX_TICK_MS, this.limit.timeMs / 4));
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
  }

  /** Stops watching: the time until the next start() does not count. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    const now = Date.now();
    const moved = this.progress();
    if (this.held()) {
      this.samples = [[now, moved]];
      return;
    }
    this.samples.push([now, moved]);
    const windowStart = now - this.limit.timeMs;
    // Keep the newest sample at or before the window's start: the base the window is measured from.
    while (this.samples.length > 1 && this.samples[1]![0] <= windowStart) this.samples.shift();
    const [baseTime, baseBytes] = this.samples[0]!;
    if (baseTime > windowStart) return; // not watched for a whole window yet
    const seconds = (now - baseTime) / 1000;
    if (moved - baseBytes < this.limit.bytesPerSecond * seconds) {
      this.stop();
      this.onSlow();
    }
  }
}
