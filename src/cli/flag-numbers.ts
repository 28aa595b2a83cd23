// The numbers of memcached 1.6.18's main flags, read as its getopt loop reads them (glibc's
// atoi, atof, strtol base 8), so a command line memcached starts with starts ferrocached
// with the same values (`-c 64k` is 64, `-t 4x` 4, `-f 1e1` 10, `-a 77x` 077). A text that
// is not a plain number gets a log line at start saying how it was read.
import { atof, atoi } from './c-numbers'

/** Texts read as themselves: digits (a decimal for `-f`), nothing around them. */
const PLAIN_INTEGER = /^\d+$/
const PLAIN_DECIMAL = /^\d+(\.\d+)?$/

function noteIfNotPlain(notes: string[], flag: string, text: string, plain: RegExp, value: string): void {
  if (!plain.test(text)) notes.push(`${flag} "${text}": read as ${value}, as memcached 1.6.18 reads it`)
}

/** memcached's `atoi(optarg)` (`-c`, `-t`, `-R`, `-n`, `-b`, `-N`), with the note. */
export function flagInt(flag: string, text: string, notes: string[]): number {
  const n = atoi(text)
  noteIfNotPlain(notes, flag, text, PLAIN_INTEGER, String(n))
  return n
}

/** memcached's `atof(optarg)` (`-f`), with the note. */
export function flagFloat(flag: string, text: string, notes: string[]): number {
  const f = atof(text)
  noteIfNotPlain(notes, flag, text, PLAIN_DECIMAL, String(f))
  return f
}

/**
 * memcached's `-a`: `strtol(optarg, NULL, 8)` into an int: white space and a sign, then the
 * octal digits up to the first other character (none: 0). memcached creates the socket with
 * its low 9 bits and shows the int in octal (`stats settings umask`): `-a 7777` shows 7777.
 */
export function flagOctal(flag: string, text: string, notes: string[]): number {
  const [, sign, digits] = /^[ \t\n\v\f\r]*([+-]?)([0-7]*)/.exec(text)!
  let n = digits === '' ? 0n : BigInt(`0o${digits!}`)
  if (sign === '-') n = -n
  const LONG = 2n ** 63n
  if (n >= LONG) n = LONG - 1n
  if (n < -LONG) n = -LONG
  const value = Number(BigInt.asIntN(32, n))
  if (!/^[0-7]+$/.test(text)) notes.push(`${flag} "${text}": read as ${octalShown(value)} (octal), as memcached 1.6.18 reads it`)
  return value
}

/** An int as memcached's `%o` prints it (a negative one as its 32-bit two's complement). */
export function octalShown(value: number): string {
  return (value >>> 0).toString(8)
}

/**
 * memcached's `-I`: a last character `k`/`K`/`m`/`M` multiplies `atoi` of the rest; any
 * other text is `atoi` of it (`1g`, `1mb` read as 1: refused as under 1024 bytes, as
 * memcached refuses them; `1.5m` is 1 MiB).
 */
export function flagItemSize(flag: string, text: string, notes: string[]): number {
  const unit = text.slice(-1)
  const scale = unit === 'k' || unit === 'K' ? 1024 : unit === 'm' || unit === 'M' ? 1024 * 1024 : 1
  const n = scale === 1 ? atoi(text) : atoi(text.slice(0, -1)) * scale
  if (!/^\d+[kKmM]?$/.test(text)) notes.push(`${flag} "${text}": read as ${n} bytes, as memcached 1.6.18 reads it`)
  return n
}
