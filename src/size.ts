// Byte sizes as users write them in options: a number of bytes or a string like '64mb'.

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
}

/**
 * Bytes from a number or a size string: `'512kb'`, `'64mb'`, `'1.5gb'`, `'1m'`
 * (case-insensitive; k, m and g are powers of 1024, as memcached counts).
 * Throws a TypeError/RangeError naming `name`.
 */
export function parseSize(name: string, value: unknown): number {
  let bytes: number
  if (typeof value === 'number') {
    bytes = value
  } else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value)
    const unit = m ? UNITS[m[2].toLowerCase()] : undefined
    if (!m || unit === undefined) {
      throw new RangeError(`${name} must be a number of bytes or a size such as '64mb', got '${value}'`)
    }
    bytes = Math.floor(Number(m[1]) * unit)
  } else {
    throw new TypeError(`${name} must be a number of bytes or a size string, got ${typeof value}`)
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new RangeError(`${name} must be a positive whole number of bytes, got ${String(value)}`)
  }
  return bytes
}
