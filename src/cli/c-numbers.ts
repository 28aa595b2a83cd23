// How memcached 1.6.18 reads the numbers of its `-o` suboptions: glibc's `atoi` and `atof`
// (a leading number, garbage reads as 0) for most, `safe_strtoul` for a few. Matching them
// decides which command lines start and with what value (measured against /usr/bin/memcached).

const LONG_MAX = 2n ** 63n - 1n
const LONG_MIN = -(2n ** 63n)
const ULONG_MAX = 2n ** 64n - 1n
/** C's isspace in the C locale. */
const SPACE = '[ \\t\\n\\v\\f\\r]'
const LEADING_INTEGER = new RegExp(`^${SPACE}*([+-]?)(\\d*)`)

/**
 * glibc's `atoi`: `(int) strtol(s, NULL, 10)`. Leading white space and a sign, then the
 * digits up to the first other character; none: 0. strtol clamps to the 64-bit long range,
 * the cast keeps the low 32 bits (`99999999999999999999` is -1, `4294967297` is 1).
 */
export function atoi(text: string): number {
  const [, sign, digits] = LEADING_INTEGER.exec(text)!
  if (digits === '') return 0
  let n = BigInt(digits!)
  if (sign === '-') n = -n
  if (n > LONG_MAX) n = LONG_MAX
  if (n < LONG_MIN) n = LONG_MIN
  return Number(BigInt.asIntN(32, n))
}

const DECIMAL_FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/
const HEX_FLOAT = /^([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)(?:[pP]([+-]?\d+))?/
const INF_NAN = /^([+-]?)(?:(inf(?:inity)?)|nan(?:\([0-9A-Za-z_]*\))?)/i
const LEADING_SPACE = new RegExp(`^${SPACE}*`)
/** The smallest normal double: below it a result is subnormal. */
const MIN_NORMAL = 2.2250738585072014e-308

/** What glibc's `strtod` makes of `text`: the value, where it stopped, and ERANGE. */
export interface Strtod {
  value: number
  /** Characters read (0: nothing, `endptr == str`). */
  end: number
  /** errno ERANGE: past the largest double, or a subnormal result that is not exact. */
  erange: boolean
}

/** glibc's `strtod`: the longest leading decimal, hexadecimal, `inf` or `nan` after white space. */
export function strtod(text: string): Strtod {
  const skip = LEADING_SPACE.exec(text)![0].length
  const s = text.slice(skip)
  const hex = HEX_FLOAT.exec(s)
  if (hex !== null && hex[2]! + hex[3]! !== '') {
    const [whole, sign, int, frac, exp] = hex
    // exact: the digits as an integer times a power of two
    const m = BigInt(`0x${int!}${frac!}`)
    const e = Number(exp ?? 0) - 4 * frac!.length
    // (2 ** e alone is 0 below 2^-1074: scale in two steps)
    let value = m === 0n ? 0 : e >= -1074 ? Number(m) * 2 ** e : (Number(m) / 2 ** (-1074 - e)) * 2 ** -1074
    const bits = m.toString(2).length
    const subnormal = m !== 0n && e + bits - 1 < -1022
    // below the smallest normal it is exact only when no bit under 2^-1074 is set
    const inexact = subnormal && e < -1074 && m % 2n ** BigInt(-1074 - e) !== 0n
    const erange = (m !== 0n && !Number.isFinite(value)) || inexact
    if (sign === '-') value = -value
    return { value, end: skip + whole!.length, erange }
  }
  const special = INF_NAN.exec(s)
  if (special !== null) {
    const value = special[2] === undefined ? Number.NaN : special[1] === '-' ? -Infinity : Infinity
    return { value, end: skip + special[0].length, erange: false }
  }
  const dec = DECIMAL_FLOAT.exec(s)
  if (dec === null) return { value: 0, end: 0, erange: false }
  const value = Number(dec[0])
  // a decimal subnormal is never exact in binary
  const nonZero = /[1-9]/.test(dec[0].replace(/e.*$/i, ''))
  const erange = !Number.isFinite(value) || (nonZero && Math.abs(value) < MIN_NORMAL)
  return { value, end: skip + dec[0].length, erange }
}

/**
 * glibc's `atof` (`strtod` without its end pointer): the longest leading floating-point
 * number after white space (decimal, hexadecimal with a `p` exponent, `inf`, `nan`), else
 * 0. Out of range reads as ±infinity (`1e400`), as strtod returns HUGE_VAL.
 */
export function atof(text: string): number {
  return strtod(text).value
}

/**
 * memcached's `safe_strtod`: refused (`undefined`) on ERANGE or when nothing is read;
 * accepted when the number ends the text or white space follows it (`0.5 x` reads 0.5).
 */
export function safeStrtod(text: string): number | undefined {
  const r = strtod(text)
  if (r.erange || r.end === 0) return undefined
  return r.end === text.length || new RegExp(`^${SPACE}`).test(text.slice(r.end)) ? r.value : undefined
}

/**
 * memcached's `safe_strtoul` into a `uint32_t`: strtoul of the whole token (white space
 * may follow it, and anything after that), refused (`undefined`) when nothing is read,
 * something else follows, it is past 2^64 - 1, or a `-` made it negative; then the low 32
 * bits (`4294967297` is 1).
 */
export function safeStrtoul(text: string): number | undefined {
  const m = new RegExp(`^${SPACE}*([+-]?)(\\d+)(?:$|${SPACE})`).exec(text)
  if (m === null) return undefined
  let n = BigInt(m[2]!)
  if (n > ULONG_MAX) return undefined
  if (m[1] === '-') n = BigInt.asUintN(64, -n)
  // memcached: "only check for negative signs in the uncommon case when the unsigned
  // number is so big that it's negative as a signed number"
  if (m[1] === '-' && n > LONG_MAX) return undefined
  return Number(BigInt.asUintN(32, n))
}

/**
 * memcached's `safe_strtol` into an `int32_t`: strtol of the whole token (white space may
 * follow it), refused (`undefined`) when nothing is read, something else follows, or it is
 * past a 64-bit long; then the low 32 bits as a signed number (`2147483648` is -2147483648).
 */
export function safeStrtol(text: string): number | undefined {
  const m = new RegExp(`^${SPACE}*([+-]?\\d+)(?:$|${SPACE})`).exec(text)
  if (m === null) return undefined
  const n = BigInt(m[1]!)
  if (n > LONG_MAX || n < -LONG_MAX - 1n) return undefined
  return Number(BigInt.asIntN(32, n))
}
