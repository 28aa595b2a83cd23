// The npm clients of clients-differential.test.ts: memjs (binary protocol) and memcached
// (text), each call of a sequence on server A and then on server B, results written as the
// Python driver writes them (helpers/clientrun.ts compares them).
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import Memcached from 'memcached'
import memjs from 'memjs'
import type { Op, Ttl, ValueSpec } from './clientgen'
import { RawConn } from './raw'
import { within } from './servers'

const PATTERN = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

/** A value from its spec, as differential_driver.py builds it. */
export function value(spec: ValueSpec): Buffer | string | number {
  if (spec[0] === 's' || spec[0] === 'i') return spec[1]
  const [, n, rot] = spec
  const pat = Buffer.concat([PATTERN.subarray(rot % 256), PATTERN.subarray(0, rot % 256)])
  const out = Buffer.alloc(n)
  for (let i = 0; i < n; i += 256) pat.copy(out, i, 0, Math.min(256, n - i))
  return out
}

export function when(ttl: Ttl | undefined): number {
  if (typeof ttl === 'string') return Math.floor(Date.now() / 1000) + Number(ttl.slice(3))
  return ttl ?? 0
}

/** A result as JSON: long bytes and strings by length and digest. */
export function shown(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.length <= 64 ? `b:${v.toString('hex')}` : `b:${v.length}:${digest(v)}`
  if (typeof v === 'string') return `s:${v.length <= 64 ? v : `${v.length}:${digest(Buffer.from(v))}`}`
  if (v === undefined) return null
  if (Array.isArray(v)) return v.map(shown)
  if (v !== null && typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, shown(x)])
  }
  return v
}

const digest = (b: Buffer): string => createHash('sha1').update(b).digest('hex').slice(0, 16)

const message = (e: unknown, port: number): string =>
  `raised ${e instanceof Error ? e.constructor.name : typeof e}: ${String(e instanceof Error ? e.message : e).replaceAll(String(port), 'PORT').slice(0, 200)}`

const COUNTERS = ['cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses', 'delete_misses', 'delete_hits', 'incr_misses', 'incr_hits', 'decr_misses', 'decr_hits', 'cas_misses', 'cas_hits', 'cas_badval', 'touch_hits', 'touch_misses', 'store_too_large', 'store_no_memory']

function counters(stats: Record<string, unknown> | null | undefined): unknown {
  if (stats === null || stats === undefined) return stats ?? null
  return COUNTERS.map((k) => [k, stats[k] === undefined ? null : Number(stats[k])])
}

/**
 * What differential_driver.py's reset does: no pending flush (`flush_all 2592001`, a time
 * before the start), every stored key (`lru_crawler metadump all`) and `keys` deleted, the
 * counters reset. No immediate flush: memcached shows the items one hid again after a later
 * delayed flush if it has not reaped them (docs/protocol.md).
 */
export async function reset(port: number, keys: readonly string[]): Promise<void> {
  const s = connect(port, '127.0.0.1')
  let got = Buffer.alloc(0)
  let wake: (() => void) | undefined
  let failed: Error | undefined
  s.on('data', (d: Buffer) => {
    got = Buffer.concat([got, d])
    wake?.()
  })
  s.on('error', (e) => {
    failed = e
    wake?.()
  })
  const ask = async (req: Buffer | string, end: string): Promise<string> => {
    s.write(req)
    const deadline = Date.now() + 5_000
    while (!got.toString('latin1').endsWith(end)) {
      if (failed !== undefined) throw failed
      if (Date.now() > deadline) throw new Error(`reset of ${port}: no ${JSON.stringify(end)} in 5 s`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, 20)
        wake = () => {
          clearTimeout(t)
          r()
        }
      })
    }
    const text = got.toString('latin1')
    got = Buffer.alloc(0)
    return text
  }
  try {
    if ((await ask('flush_all 2592001\r\n', '\r\n')) !== 'OK\r\n') throw new Error(`reset of ${port}: flush_all`)
    let dump = ''
    for (let i = 0; i < 100; i++) {
      dump = await ask('lru_crawler metadump all\r\n', '\r\n')
      if (!dump.startsWith('BUSY')) break
      await new Promise((r) => setTimeout(r, 10))
    }
    if (!dump.endsWith('END\r\n')) dump += await ask('', 'END\r\n')
    const stored = [...dump.matchAll(/^key=(\S+)/gm)].map((m) => unquote(m[1]!))
    const all = [...stored, ...keys.map((k) => Buffer.from(k))]
    // a key a text command line cannot name (a space or control byte: binary clients store
    // them) is deleted by meta, in base64
    const deletion = (k: Buffer): Buffer[] =>
      k.some((c) => c <= 32 || c === 127) ? [Buffer.from(`md ${k.toString('base64')} b q\r\n`)] : [Buffer.from('delete '), k, Buffer.from(' noreply\r\n')]
    const req = Buffer.concat([...all.flatMap(deletion), Buffer.from('stats reset\r\n')])
    // a quiet md still answers NF for a missing key
    if ((await ask(req, 'RESET\r\n')).replace(/^(NF\r\n)*/, '') !== 'RESET\r\n') throw new Error(`reset of ${port}: stats reset`)
  } finally {
    s.destroy()
  }
}

export const READ_PAST = 'stopped: memcached read past a white-space value'
const WHITE = new Set([9, 10, 11, 12, 13, 32])

/**
 * differential_driver.py's read_past: whether an increment that memcached answered with a
 * number and ferrocached (on `port`) refused met a value of only white space there (or
 * none), which memcached's strtoull skips with the value's CRLF to read on into what the
 * item's slab chunk held before (docs/protocol.md, known differences).
 */
async function readPast(op: Op, x: unknown, y: unknown, port: number): Promise<boolean> {
  const key = Buffer.from(op.key ?? '')
  // a number, or memjs's [success, number]
  const counted = (v: unknown): boolean => typeof v === 'number' || (Array.isArray(v) && typeof v.at(-1) === 'number')
  if ((op.op !== 'incr' && op.op !== 'decr') || !counted(x) || counted(y)) return false
  if (key.length === 0 || key.length > 250 || key.some((c) => c <= 32 || c === 127)) return false
  const c = await RawConn.open(port)
  try {
    // mn's MN comes after the whole value (one that is white space holds no MN)
    c.send(Buffer.concat([Buffer.from('mg '), key, Buffer.from(' v\r\nmn\r\n')]))
    const got = Buffer.from(await c.until('MN\r\n'), 'latin1')
    const head = /^VA (\d+)/.exec(got.toString('latin1'))
    if (head === null) return false
    const value = got.subarray(got.indexOf('\r\n') + 2, got.indexOf('\r\n') + 2 + Number(head[1]))
    return value.every((b) => WHITE.has(b))
  } finally {
    c.close()
  }
}

export const UNPADDED = 'stopped: memcached stored an increment unpadded'

/**
 * differential_driver.py's unpadded: memcached's answer is ferrocached's with the spaces
 * after its digits taken out (memcached pads a shorter increment in place only while
 * nothing else holds the item, docs/protocol.md; ferrocache always pads).
 */
function unpadded(a: unknown, b: unknown): string | undefined {
  const [x, y] = [JSON.stringify(a), JSON.stringify(b)]
  // a value appended to or prepended later keeps the spaces inside it; no value the
  // generator draws has a digit before a space
  const y2 = y.replace(/(?<=\d) +/g, '').replace(/(3[0-9])(?:20)+/g, '$1')
  return x !== y && x === y2 ? UNPADDED : undefined
}

const PROBE = 'zz-cas-probe'

/**
 * differential_driver.py's align: the CAS value a store takes on each server now (one
 * store, then deleted), then the one behind brought level with stores of its own and
 * the counters reset, so a sequence starts from level counters and a CAS difference it leaves is reported for its
 * seed (its caller compares what this returns) rather than in every sequence after it.
 */
export async function levelCas(a: number, b: number): Promise<[number, number]> {
  const conns = await Promise.all([a, b].map((port) => RawConn.open(port)))
  try {
    const got: number[] = []
    for (const c of conns) {
      c.send(`set ${PROBE} 0 0 1\r\nx\r\ngets ${PROBE}\r\ndelete ${PROBE}\r\n`)
      const cas = Number((await c.until('DELETED\r\n')).split('\r\n')[1]?.split(' ')[4])
      if (!Number.isSafeInteger(cas)) throw new Error('levelCas: no CAS from the probe')
      got.push(cas)
    }
    const top = Math.max(...got)
    for (const [i, c] of conns.entries()) {
      if (got[i]! === top) continue
      c.send(`set ${PROBE} 0 0 1 noreply\r\nx\r\n`.repeat(top - got[i]!) + `delete ${PROBE}\r\n`)
      if ((await c.until('DELETED\r\n')) !== 'DELETED\r\n') throw new Error('levelCas: no DELETED')
    }
    // the probe's and the levelling's stores count in stats on one server only
    for (const c of conns) {
      c.send('stats reset\r\n')
      if ((await c.until('RESET\r\n')) !== 'RESET\r\n') throw new Error('levelCas: no RESET')
    }
    return got as [number, number]
  } finally {
    for (const c of conns) c.close()
  }
}

/** A metadump key (URL-encoded) as its bytes. */
function unquote(text: string): Buffer {
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3)
    if (text[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16))
      i += 2
    } else out.push(text.charCodeAt(i))
  }
  return Buffer.from(out)
}

/** One client on one server. */
interface Side {
  call(op: Op): Promise<unknown>
  close(): void
}

export function memjsSide(port: number): Side {
  const c = memjs.Client.create(`127.0.0.1:${port}`, { retries: 0, timeout: 5, conntimeout: 5, logger: { log: () => {} } })
  const val = (op: Op): string | Buffer => {
    const v = value(op.value!)
    return typeof v === 'number' ? String(v) : v
  }
  return {
    close: () => c.close(),
    async call(op) {
      const key = op.key!
      const expires = when(op.ttl)
      switch (op.op) {
        case 'set':
        case 'add':
        case 'replace':
          return await c[op.op](key, val(op), { expires })
        case 'append':
        case 'prepend':
          return await c[op.op](key, val(op))
        case 'get': {
          const got = await c.get(key)
          return [got.value, got.flags]
        }
        case 'delete':
          return await c.delete(key)
        case 'incr':
        case 'decr': {
          const options = op.initial === undefined ? {} : { initial: op.initial, expires }
          const r = await (op.op === 'incr' ? c.increment(key, op.delta!, options) : c.decrement(key, op.delta!, options))
          return [r.success, r.value]
        }
        case 'touch':
          return await c.touch(key, expires)
        case 'flush':
          return Object.values(await c.flush())
        case 'stats':
          return counters(await new Promise<Record<string, string> | null>((resolve, reject) => c.stats((err, _s, st) => (err ? reject(err) : resolve(st)))))
      }
      throw new Error(`memjs has no ${op.op}`)
    },
  }
}

export function memcachedSide(port: number): Side {
  // no retries, no failure counting: an error is the call's result, never a server marked dead
  const mc = new Memcached(`127.0.0.1:${port}`, { retries: 0, timeout: 5000, idle: 10_000, failures: 1_000_000, retry: 0, reconnect: 0, poolSize: 1 })
  const cas = new Map<string, string>()
  const call = <T>(fn: (cb: (err: unknown, v: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))))
  const token = (op: Op): string => {
    const last = cas.get(op.key!) ?? '1'
    if (op.cas === 'stale') return String(BigInt(last) - 1n || 1n)
    if (op.cas === 'bogus') return String(op.bogus ?? 123456789)
    return last
  }
  return {
    close: () => mc.end(),
    async call(op) {
      const key = op.key!
      const ttl = when(op.ttl)
      switch (op.op) {
        case 'set':
        case 'add':
        case 'replace':
          return await call((cb) => mc[op.op as 'set'](key, value(op.value!), ttl, cb))
        case 'append':
        case 'prepend':
          return await call((cb) => mc[op.op as 'append'](key, value(op.value!), cb))
        case 'cas':
          return await call((cb) => mc.cas(key, value(op.value!), token(op), ttl, cb))
        case 'get':
          return await call((cb) => mc.get(key, cb))
        case 'gets': {
          const got = await call<Record<string, unknown> | undefined>((cb) => mc.gets(key, cb))
          if (got?.cas !== undefined) cas.set(key, String(got.cas))
          return got
        }
        case 'getMulti':
          return await call((cb) => mc.getMulti(op.keys!, cb))
        case 'delete':
          return await call((cb) => mc.del(key, cb))
        case 'incr':
        case 'decr':
          return await call((cb) => mc[op.op as 'incr'](key, op.delta!, cb))
        case 'touch':
          // typed as (err) only, but called with the reply's result as other commands
          return await call((cb) => mc.touch(key, ttl, cb as unknown as (err: unknown) => void))
        case 'flush':
          return await call((cb) => mc.flush(cb))
        case 'stats':
          return ((await call<Record<string, unknown>[]>((cb) => mc.stats(cb))) ?? []).map(counters)
        case 'version':
          return ((await call<{ version: string }[]>((cb) => mc.version(cb))) ?? []).map((v) => typeof v.version)
      }
      throw new Error(`memcached (npm) has no ${op.op}`)
    },
  }
}

/** Runs one sequence through `make`'s client on both servers in lockstep: [a, b] results. */
export async function lockstep(make: (port: number) => Side, ops: Op[], a: number, b: number): Promise<[unknown[], unknown[]]> {
  const sides = [make(a), make(b)]
  const results: [unknown[], unknown[]] = [[], []]
  try {
    for (const [at, op] of ops.entries()) {
      for (const [i, side] of sides.entries()) {
        const port = i === 0 ? a : b
        // bounded: a client whose callback never comes fails the call, not the run
        const call = within(side.call(op), 10_000, `${op.op} on ${port}`)
        results[i as 0 | 1].push(await call.then(shown, (e: unknown) => message(e, port)))
      }
      const stopped = (await readPast(op, results[0].at(-1), results[1].at(-1), b)) ? READ_PAST : unpadded(results[0].at(-1), results[1].at(-1))
      if (stopped !== undefined) {
        for (const r of results) r[r.length - 1] = [stopped, at]
        break
      }
    }
  } finally {
    for (const side of sides) side.close()
  }
  return results
}
