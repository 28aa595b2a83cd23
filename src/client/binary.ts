// memcached's binary protocol (`protocol: 'binary'`), the only one servers started with
// SASL (`-S`) accept: every request is a 24-byte header (magic 0x80, opcode, key length,
// extras length, body length, opaque, CAS), extras, key, value. Single requests use the
// opcodes that always answer; batches the quiet ones (answering only hits, or failures),
// closed by a noop. Each request carries an opaque of its own, which the reply must echo.
import type { Write } from '../options'
import type { Login } from './login'
import { BinaryBatch, BinaryRequest, BinaryStats, HEADER_BYTES, isVersionReply, SaslReply } from './binary-replies'
import { HAS } from './requests'
import type { StoreMode, Wire } from './wire'

const OP = {
  GET: 0x00,
  SET: 0x01,
  ADD: 0x02,
  REPLACE: 0x03,
  DELETE: 0x04,
  INCREMENT: 0x05,
  DECREMENT: 0x06,
  FLUSH: 0x08,
  NOOP: 0x0a,
  VERSION: 0x0b,
  GETKQ: 0x0d,
  APPEND: 0x0e,
  PREPEND: 0x0f,
  STAT: 0x10,
  SETQ: 0x11,
  DELETEQ: 0x14,
  TOUCH: 0x1c,
  GAT: 0x1d,
  SASL_LIST_MECHS: 0x20,
  SASL_AUTH: 0x21,
} as const

const STORE_OPCODE: Record<StoreMode, number> = {
  set: OP.SET,
  add: OP.ADD,
  replace: OP.REPLACE,
  append: OP.APPEND,
  prepend: OP.PREPEND,
  cas: OP.SET, // a set with the CAS in the header
}

/** incr/decr's expiration that tells the server not to create a missing item: it answers
 * "not found", as meta's `ma` and text's `incr` do, instead of storing the initial value. */
const NO_CREATE = 0xffff_ffff

/** The opaque of the request made last. A request's reader is made right after its bytes
 * (the Client builds the request, then what reads its reply), so it takes this one. */
let lastOpaque = 0

function nextOpaque(): number {
  lastOpaque = (lastOpaque + 1) >>> 0
  return lastOpaque
}

/** A request's header, `extras` bytes left for the caller, and the key. The body length
 * counts extras and key; `Connection` adds a value's bytes when it writes one behind. */
function packet(opcode: number, key: string, extras: number, opaque: number, cas = 0n): Buffer {
  const keyBytes = key === '' ? 0 : Buffer.byteLength(key)
  // every byte is written below (extras by the caller): no zero fill needed
  const buf = Buffer.allocUnsafe(HEADER_BYTES + extras + keyBytes)
  buf[0] = 0x80
  buf[1] = opcode
  buf.writeUInt16BE(keyBytes, 2)
  buf[4] = extras
  buf[5] = 0 // data type: raw bytes
  buf.writeUInt16BE(0, 6) // vbucket
  buf.writeUInt32BE(extras + keyBytes, 8)
  buf.writeUInt32BE(opaque, 12)
  if (cas === 0n) {
    buf.writeUInt32BE(0, 16)
    buf.writeUInt32BE(0, 20)
  } else buf.writeBigUInt64BE(cas, 16)
  if (keyBytes > 0) buf.write(key, HEADER_BYTES + extras, 'utf8')
  return buf
}

/** A get-like request (`GET`, `GETKQ`), `TOUCH`/`GAT` with their expiration. */
function keyed(opcode: number, key: string, exptime?: number, opaque = nextOpaque()): Buffer {
  if (exptime === undefined) return packet(opcode, key, 0, opaque)
  const buf = packet(opcode, key, 4, opaque)
  buf.writeUInt32BE(exptime, HEADER_BYTES)
  return buf
}

function store(opcode: number, key: string, w: Write, cas: bigint | undefined): Buffer {
  // append/prepend take no extras (flags and expiration stay the item's)
  const hasExtras = opcode !== OP.APPEND && opcode !== OP.PREPEND
  const buf = packet(opcode, key, hasExtras ? 8 : 0, nextOpaque(), cas ?? 0n)
  if (hasExtras) {
    buf.writeUInt32BE(w.flags, HEADER_BYTES)
    buf.writeUInt32BE(w.exptime, HEADER_BYTES + 4)
  }
  return buf
}

/** `SASL list mechs`, then `SASL auth` PLAIN (`\0user\0password`), sent first on a
 * connection, and what reads their answers. */
export function saslLogin(login: Login, deadline: number, server: string, loggedIn: () => void): { reply: SaslReply; requests: Buffer[] } {
  const mechs = packet(OP.SASL_LIST_MECHS, '', 0, nextOpaque())
  const auth = packet(OP.SASL_AUTH, 'PLAIN', 0, nextOpaque())
  const plain = Buffer.from(`\0${login.username}\0${login.password}`, 'utf8')
  auth.writeUInt32BE(auth.readUInt32BE(8) + plain.length, 8)
  return { reply: new SaslReply(deadline, login.username, server, loggedIn), requests: [mechs, Buffer.concat([auth, plain])] }
}

export const BINARY: Wire = {
  protocol: 'binary',
  binary: true,
  one: (kind, deadline, encoding, server, resolve, reject) => new BinaryRequest(deadline, lastOpaque, kind, encoding, server, resolve, reject),
  // the batch's requests are made right after it: opaques from the next one on
  many: (count, deadline, server, resolve, reject) => new BinaryBatch(deadline, (lastOpaque + 1) >>> 0, count, undefined, server, resolve, reject),
  getMany: (keys, deadline, encoding, server, resolve, reject) => {
    const pending = new BinaryBatch(deadline, (lastOpaque + 1) >>> 0, keys.length, encoding, server, resolve, reject)
    const lines = keys.map((k) => keyed(OP.GETKQ, k))
    lines.push(keyed(OP.NOOP, ''))
    return { pending, lines }
  },
  get: (key) => keyed(OP.GET, key),
  gets: (key) => keyed(OP.GET, key),
  gat: (key, exptime) => keyed(OP.GAT, key, exptime),
  touch: (key, exptime) => keyed(OP.TOUCH, key, exptime),
  // no binary command answers "is it there" without the value: a get, value dropped
  has: (key) => keyed(OP.GET, key),
  hasKind: HAS,
  delete: (key) => keyed(OP.DELETE, key),
  arith: (key, incr, delta) => {
    const buf = packet(incr ? OP.INCREMENT : OP.DECREMENT, key, 20, nextOpaque())
    buf.writeBigUInt64BE(delta, HEADER_BYTES)
    buf.writeBigUInt64BE(0n, HEADER_BYTES + 8)
    buf.writeUInt32BE(NO_CREATE, HEADER_BYTES + 16)
    return buf
  },
  store: (key, mode, w, cas) => [store(STORE_OPCODE[mode], key, w, cas), ''],
  batchStore: (key, w) => [store(OP.SETQ, key, w, undefined), ''],
  batchDelete: (key) => keyed(OP.DELETEQ, key),
  batchEnd: () => keyed(OP.NOOP, ''),
  flush: (seconds) => keyed(OP.FLUSH, '', seconds === 0 ? undefined : seconds),
  stats: (deadline, server, resolve, reject) => ({
    pending: new BinaryStats(deadline, 3, server, resolve, reject),
    request: Buffer.concat([packet(OP.STAT, '', 0, 0), packet(OP.STAT, 'slabs', 0, 0), packet(OP.STAT, 'items', 0, 0)]),
  }),
  probe: packet(OP.VERSION, '', 0, 0),
  probeAnswered: (_head, buf, at) => isVersionReply(buf, at),
}
