/**
 * Coalesces a cell's stream writes: the first write of a turn of the event loop goes out at once
 * (so "starting..." shows even before a long synchronous computation), later writes of the same
 * turn are sent together on the next macrotask (or at 64 KiB), so thousands of quick prints
 * become a handful of iopub messages.
 */

const FLUSH_BYTES = 64 * 1024;

/** Wraps `write(name, text)`; returns the coalescing writer and a `flush` to call before anything else is sent. */
export function coalesceStream(write: (name: string, text: string) => void): { write: (name: string, text: string) => void; flush: () => void } {
  let stream: string | null = null;
  let chunks: string[] = [];
  let bytes = 0;
  let scheduled = false;
  const flush = () => {
    if (stream !== null && chunks.length) write(stream, chunks.join(""));
    stream = null;
    chunks = [];
    bytes = 0;
  };
  return {
    flush,
    write(name: string, text: string) {
      if (!scheduled && stream === null) {
        write(name, text);
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          flush();
        });
        return;
      }
      // A switch of stream sends what came before, so stdout and stderr keep their relative order.
      if (stream !== name) flush();
      stream = name;
      chunks.push(text);
      bytes += text.length;
      if (bytes >= FLUSH_BYTES) return flush();
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          flush();
        });
      }
    },
  };
}
