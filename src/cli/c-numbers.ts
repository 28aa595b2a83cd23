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

/**
 * glibc's `atof` (`strtod` without its end pointer): the longest leading floating-point
 * number after white space (decimal, hexadecimal with a `p` exponent, `inf`, `nan`), else
 * 0. Out of range reads as ±infinity (`1e400`), as strtod returns HUGE_VAL.
 */
export function atof(text: string): number {
  const s = text.replace(new RegExp(`^${SPACE}+`), '')
  const hex = HEX_FLOAT.exec(s)
  if (hex !== null && hex[2]! + hex[3]! !== '') {
    const [, sign, whole, frac, exp] = hex
    let n = Number.parseInt(whole! === '' ? '0' : whole!, 16)
    for (const [i, ch] of [...frac!].entries()) n += Number.parseInt(ch, 16) / 16 ** (i + 1)
    n *= 2 ** Number(exp ?? 0)
    return sign === '-' ? -n : n
  }
  const special = INF_NAN.exec(s)
  if (special !== null) {
    if (special[2] === undefined) return Number.NaN
    return special[1] === '-' ? -Infinity : Infinity
  }
  const dec = DECIMAL_FLOAT.exec(s)
  return dec === null ? 0 : Number(dec[0])
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
