// Binary protocol request packets for tests that speak it raw.

/** A request: memcached's 24-byte header (magic 0x80, lengths, opaque, CAS), then extras,
 * key and value. */
export function binaryRequest(
  opcode: number,
  key = '',
  extras: Buffer = Buffer.alloc(0),
  value = '',
  ids: { opaque?: number; cas?: bigint } = {},
): Buffer {
  const header = Buffer.alloc(24)
  header[0] = 0x80
  header[1] = opcode
  header.writeUInt16BE(key.length, 2)
  header[4] = extras.length
  header.writeUInt32BE(extras.length + key.length + value.length, 8)
  header.writeUInt32BE(ids.opaque ?? 0, 12)
  header.writeBigUInt64BE(ids.cas ?? 0n, 16)
  return Buffer.concat([header, extras, Buffer.from(key + value, 'latin1')])
}
