// Where a reply line carries a value, and how many bytes it announces: meta's
// `VA <bytes> <flags>*` and the text protocol's `VALUE <key> <flags> <bytes> [<cas>]`.
// The byte count decides where the next reply starts, so one that is not a plain
// number is refused rather than trusted (a negative one would send the parser back).

/** Reply lines are short (a VALUE line with a 250-byte key is about 300 bytes): more
 * than this without a line end is not the protocol, and would be joined again with every
 * chunk that arrives until the request timed out. */
export const MAX_LINE_BYTES = 64 * 1024

/** The largest value a reply may announce: memcached's item size limit (`-I`) tops out
 * at 1 GiB. A larger count is garbage, not a value to wait for. */
const MAX_VALUE_BYTES = 1024 * 1024 * 1024

/** `announcedBytes` of a line that carries no value. */
export const NO_VALUE = -1
/** `announcedBytes` of a value line whose byte count is not a number up to MAX_VALUE_BYTES. */
export const MALFORMED = -2

const VA = 0x4156 // "VA" read as a little-endian uint16 of the first two bytes
const LUE_ = 0x2045554c // "LUE " as a little-endian uint32: the rest of "VALUE "

/** The byte count written at `at` (up to a space or `lineEnd`), or MALFORMED when it is
 * not a plain decimal number of at most MAX_VALUE_BYTES (`-5`, `5x`, empty). */
function byteCount(buf: Buffer, at: number, lineEnd: number): number {
  let size = 0
  let i = at
  for (; i < lineEnd && buf[i] !== 32; i++) {
    const digit = buf[i]! - 48
    if (digit < 0 || digit > 9) return MALFORMED
    size = size * 10 + digit
    if (size > MAX_VALUE_BYTES) return MALFORMED
  }
  return i === at ? MALFORMED : size
}

/** Where the byte count of a text `VALUE <key> <flags> <bytes>` line starts, or -1 when
 * the line is not one. */
function textByteCountAt(buf: Buffer, pos: number, nl: number): number {
  if (nl - pos < 11 || buf.readUInt32LE(pos + 2) !== LUE_) return -1
  const afterKey = buf.indexOf(32, pos + 6)
  const afterFlags = afterKey === -1 || afterKey >= nl ? -1 : buf.indexOf(32, afterKey + 1)
  return afterFlags === -1 || afterFlags >= nl ? -1 : afterFlags + 1
}

/** The value bytes announced by the reply line `buf[pos, nl)` (`nl` is its `\n`): a
 * count, NO_VALUE, or MALFORMED. The value follows the line, then CRLF. */
export function announcedBytes(buf: Buffer, pos: number, nl: number): number {
  if (nl - pos <= 3 || buf.readUInt16LE(pos) !== VA) return NO_VALUE
  // meta's `VA ` is told apart from `VALUE ` by its third byte
  const at = buf[pos + 2] === 32 ? pos + 3 : textByteCountAt(buf, pos, nl)
  return at === -1 ? NO_VALUE : byteCount(buf, at, buf[nl - 1] === 13 ? nl - 1 : nl)
}
