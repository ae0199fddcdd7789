/**
 * "Did you mean ...?" suggestions for unknown options and magics (commander's approach: the
 * closest candidates by Damerau-Levenshtein distance, and only when they are similar enough).
 */

/** Optimal-string-alignment distance: edits, with a swap of two neighbours counting as one. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

const MAX_DISTANCE = 3;
const MIN_SIMILARITY = 0.4;

/**
 * The candidates closest to `word` (all those at the best distance, at most 3 edits away and
 * more than 40% similar), in their given order; empty when nothing is close.
 */
export function suggestSimilar(word: string, candidates: Iterable<string>): string[] {
  let best = MAX_DISTANCE + 1;
  let similar: string[] = [];
  for (const c of new Set(candidates)) {
    if (c.length <= 1) continue;
    const distance = editDistance(word, c);
    const length = Math.max(word.length, c.length);
    if ((length - distance) / length <= MIN_SIMILARITY) continue;
    if (distance < best) {
      best = distance;
      similar = [c];
    } else if (distance === best) {
      similar.push(c);
    }
  }
  return similar;
}

/** `"\n(Did you mean --size?)"`-style hint text, or `""` when nothing is close. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = suggestSimilar(word, candidates);
  if (s.length === 0) return "";
  return s.length === 1 ? ` (Did you mean ${s[0]}?)` : ` (Did you mean one of ${s.join(", ")}?)`;
}
