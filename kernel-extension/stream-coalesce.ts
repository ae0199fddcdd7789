/**
 * Coalesces a cell's stream writes: the first write of a turn of the event loop goes out at once
 * (so "starting..." shows even before a long synchronous computation), later writes of the same
 * turn are sent together on the next macrotask (or at 64 KiB), so thousands of quick prints
 * become a handful of iopub messages. One implementation for both JavaScript kernels: the Sense
 * kernel coalesces per request, the fast kernel per cell context.
 */

/** A buffer flushes at this many characters without waiting for the next macrotask. */
export const FLUSH_BYTES = 64 * 1024;

interface Buffered {
  stream: string;
  chunks: string[];
  bytes: number;
}

/** Stream writes of several destinations (`K`: a request, a cell), coalesced; `send` gets the merged text. */
export class StreamCoalescer<K> {
  private readonly buffers = new Map<K, Buffered>();
  private scheduled = false;

  constructor(private readonly send: (key: K, name: string, text: string) => void) {}

  /** Takes one write of `text` to stream `name` of `key`. */
  write(key: K, name: string, text: string): void {
    if (!this.scheduled && this.buffers.size === 0) {
      this.send(key, name, text);
      this.schedule();
      return;
    }
    // A switch of stream sends what came before, so stdout and stderr keep their relative order.
    if (this.buffers.get(key)?.stream !== name) this.flush(key);
    let b = this.buffers.get(key);
    if (!b) {
      b = { stream: name, chunks: [], bytes: 0 };
      this.buffers.set(key, b);
    }
    b.chunks.push(text);
    b.bytes += text.length;
    if (b.bytes >= FLUSH_BYTES) return this.flush(key);
    this.schedule();
  }

  /** Sends what `key` has buffered now (before anything else of it is sent). */
  flush(key: K): void {
    const b = this.buffers.get(key);
    if (!b) return;
    this.buffers.delete(key);
    if (b.chunks.length) this.send(key, b.stream, b.chunks.join(""));
  }

  /** Sends everything buffered. */
  flushAll(): void {
    for (const key of [...this.buffers.keys()]) this.flush(key);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushAll();
    });
  }
}

/** Wraps one request's `write(name, text)`; returns the coalescing writer and a `flush` to call before anything else is sent. */
export function coalesceStream(write: (name: string, text: string) => void): { write: (name: string, text: string) => void; flush: () => void } {
  const c = new StreamCoalescer<null>((_key, name, text) => write(name, text));
  return { write: (name, text) => c.write(null, name, text), flush: () => c.flush(null) };
}
