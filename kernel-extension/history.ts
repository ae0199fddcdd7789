/**
 * A kernel's input history, for `history_request` (Jupyter messaging 5.3): the last 1,000 inputs
 * of this session, by execution count.
 */

/** One history entry: session, line number, input. */
export type HistoryEntry = [number, number, string];

const KEEP = 1_000;

/** The inputs of one kernel session. */
export class History {
  private readonly entries: HistoryEntry[] = [];

  /** Records the input of execution `count`. */
  add(count: number, code: string): void {
    this.entries.push([0, count, code]);
    if (this.entries.length > KEEP) this.entries.shift();
  }

  /** history_request: `tail` (last n), `range` (this session's lines), `search` (glob, optionally unique). Never throws. */
  answer(content: Record<string, unknown>): HistoryEntry[] {
    const output = content.output === true;
    const shape = (e: HistoryEntry): HistoryEntry => (output ? ([e[0], e[1], [e[2], null]] as unknown as HistoryEntry) : e);
    const n = typeof content.n === "number" && content.n > 0 ? content.n : this.entries.length;
    switch (content.hist_access_type) {
      case "tail":
        return this.entries.slice(-n).map(shape);
      case "range": {
        const start = typeof content.start === "number" ? content.start : 0;
        const stop = typeof content.stop === "number" && content.stop > 0 ? content.stop : Infinity;
        return this.entries.filter((e) => e[1] >= start && e[1] < stop).map(shape);
      }
      case "search": {
        const pattern = typeof content.pattern === "string" ? content.pattern : "*";
        const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[\\s\\S]*").replace(/\?/g, "[\\s\\S]")}$`);
        let hits = this.entries.filter((e) => re.test(e[2]));
        if (content.unique === true) hits = hits.filter((e, i) => hits.findIndex((x) => x[2] === e[2]) === i);
        return hits.slice(-n).map(shape);
      }
      default:
        return [];
    }
  }
}
