// Redis-style save rules: "900 1 300 100 60 10000" = save after 900 s if at least 1 change,
// after 300 s if at least 100, after 60 s if at least 10000. "" = no scheduled saves.

/** Save when at least `changes` changes are `seconds` old or older. */
export interface SaveRule {
  /** Seconds since the last snapshot… */
  seconds: number
  /** …and at least this many writes since it: then a snapshot is written. */
  changes: number
}

/** The rules used when a data directory is given without `save`. */
export const DEFAULT_SAVE = '900 1 300 100 60 10000'

/** Parses `"<seconds> <changes> ..."`; throws a RangeError naming the bad part. */
export function parseSaveRules(text: string): SaveRule[] {
  if (typeof text !== 'string') throw new TypeError(`save must be a string such as "${DEFAULT_SAVE}", got ${typeof text}`)
  const parts = text.trim() === '' ? [] : text.trim().split(/\s+/)
  if (parts.length % 2 !== 0) {
    throw new RangeError(`save needs pairs of "<seconds> <changes>", got "${text}"`)
  }
  const rules: SaveRule[] = []
  for (let i = 0; i < parts.length; i += 2) {
    const [seconds, changes] = [parts[i]!, parts[i + 1]!].map((p) => {
      if (!/^\d+$/.test(p) || Number(p) < 1 || !Number.isSafeInteger(Number(p))) {
        throw new RangeError(`save: "${p}" is not a whole number of at least 1 (in "${text}")`)
      }
      return Number(p)
    }) as [number, number]
    rules.push({ seconds, changes })
  }
  return rules
}

/** The first rule that asks for a save now, as Redis checks them. */
export function dueRule(rules: readonly SaveRule[], secondsSinceSave: number, changes: number): SaveRule | undefined {
  return rules.find((r) => changes >= r.changes && secondsSinceSave >= r.seconds)
}

/** `"900 1 300 100"` again, for logs and `stats settings`. */
export function formatSaveRules(rules: readonly SaveRule[]): string {
  return rules.map((r) => `${r.seconds} ${r.changes}`).join(' ')
}
