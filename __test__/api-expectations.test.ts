// The public API as a Node user reads it: a signal is anything Node's own APIs take as one
// (a polyfill's, another realm's such as jsdom's), AbortSignal.timeout bounds one Client
// call, an options object where touch/gat's ttl goes (or no ttl) says where it belongs, and
// `await using` works on the shared interface (CacheLike) whichever class is behind it, and
// util.inspect shows what a Cache or a Client is.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import type * as TS from 'typescript'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, createServer, type CacheLike } from '../src'
import { KeyvFerrocache } from '../src/adapters/keyv'
import { rejectsLike } from './cache-assert'
import { setUp, tearDown } from './helpers/guard'
import { ROOT } from './helpers/servers'

/** A signal shaped as the abort-controller polyfill's (an EventTarget with `aborted`, not
 * an AbortSignal instance); `withReason: false` as that polyfill, which has no `reason`. */
function shimController(withReason = true): { signal: AbortSignal; abort(reason?: unknown): void } {
  class ShimSignal extends EventTarget {
    aborted = false
    reason: unknown = undefined
  }
  const signal = new ShimSignal()
  return {
    signal: signal as unknown as AbortSignal,
    abort(reason?: unknown) {
      signal.aborted = true
      if (withReason) signal.reason = reason ?? new DOMException('This operation was aborted', 'AbortError')
      signal.dispatchEvent(new Event('abort'))
    },
  }
}

/** A server that accepts connections and never answers (a hung memcached). */
let silent: net.Server
const sockets = new Set<net.Socket>()
let silentPort = 0

setUp(test, async () => {
  silent = net.createServer((s) => {
    s.on('error', () => {})
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  silent.on('error', () => {})
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  silentPort = (silent.address() as net.AddressInfo).port
})

tearDown(test, async () => {
  for (const s of sockets) s.destroy()
  await new Promise<void>((resolve) => silent.close(() => resolve()))
})

/** A Client of the silent server; its pending requests fail once the server drops them. */
async function withSilentClient(body: (c: Client<'utf8'>) => Promise<void>): Promise<void> {
  const c = new Client({ servers: [`127.0.0.1:${silentPort}`], encoding: 'utf8', timeout: 5_000 })
  try {
    await body(c)
  } finally {
    for (const s of sockets) s.destroy()
    await c.close()
  }
}

test("a signal shaped as Node's APIs accept one (a polyfill's, another realm's) works on Cache, fetch and Client", async () => {
  const cache = new Cache({ encoding: 'utf8' })
  try {
    const live = shimController()
    assert.is(await cache.set('k', 'v', { signal: live.signal }), true)
    assert.is(await cache.get('k', { signal: live.signal }), 'v')
    assert.is(await cache.touch('k', 1000, { signal: live.signal }), true)
    assert.is(cache.deleteSync('k', { signal: live.signal }), true)
    assert.is(await cache.fetch('f', () => 'loaded', { signal: live.signal }), 'loaded')

    const aborted = shimController()
    const reason = new Error('gave up')
    aborted.abort(reason)
    const err = await rejectsLike(() => cache.get('k', { signal: aborted.signal }), DOMException, /aborted/)
    assert.is(err.name, 'AbortError')
    assert.is(err.cause, reason)
    // fetch rejects with the reason itself, as the global fetch does ...
    assert.is(await cache.fetch('g', () => 'x', { signal: aborted.signal }).catch((e: unknown) => e), reason)
    // ... and for a polyfill's signal without a reason, with an AbortError (not undefined)
    const bare = shimController(false)
    bare.abort()
    const e2 = await cache.fetch('g', () => 'x', { signal: bare.signal }).catch((e: unknown) => e)
    assert.instance(e2, DOMException)
    assert.is((e2 as DOMException).name, 'AbortError')

    // an object Node's rule takes but that cannot be watched is refused, by name
    for (const [signal, got] of [
      [{ aborted: false }, 'object without addEventListener and removeEventListener'],
      [{}, 'object without an aborted property'],
    ] as const) {
      const bad = await rejectsLike(() => cache.get('k', { signal: signal as unknown as AbortSignal }), TypeError, /^options\.signal must be an AbortSignal, got /)
      assert.is(bad.message, `options.signal must be an AbortSignal, got ${got}`)
      assert.is((bad as Error & { code?: string }).code, 'FERROCACHE_BAD_ARGUMENT')
    }
  } finally {
    cache.close()
  }

  // the Client watches it while the reply is awaited
  await withSilentClient(async (c) => {
    const shim = shimController()
    const pending = c.get('k', { signal: shim.signal })
    const started = Date.now()
    setTimeout(() => shim.abort(new Error('shim')), 30)
    const err = await pending.catch((e: unknown) => e)
    assert.instance(err, DOMException)
    assert.is((err as DOMException).name, 'AbortError')
    assert.ok(Date.now() - started < 2_000, `rejected after ${Date.now() - started} ms`)
  })
})

test('AbortSignal.timeout(ms) bounds one Client call (alone or through AbortSignal.any), below the client-wide timeout', async () => {
  await withSilentClient(async (c) => {
    let started = Date.now()
    const err = await c.get('k', { signal: AbortSignal.timeout(50) }).catch((e: unknown) => e)
    const took = Date.now() - started
    assert.instance(err, DOMException)
    assert.is((err as DOMException).name, 'AbortError')
    assert.is(((err as DOMException).cause as DOMException).name, 'TimeoutError')
    assert.ok(took >= 40 && took < 2_000, `rejected after ${took} ms`)

    const request = new AbortController()
    started = Date.now()
    const either = AbortSignal.any([request.signal, AbortSignal.timeout(60)])
    const e2 = await c.set('k', 'v', { ttl: 1000, signal: either }).catch((e: unknown) => e)
    assert.is(((e2 as DOMException).cause as DOMException).name, 'TimeoutError')
    assert.ok(Date.now() - started < 2_000)
  })
})

test('touch, gat and cas given options where the ttl or the CAS token goes, or none, say where each goes (Cache and Client)', async () => {
  const cache = new Cache()
  const signal = new AbortController().signal
  const client = new Client({ servers: [`127.0.0.1:${silentPort}`] })
  try {
    for (const c of [cache, client] as CacheLike[]) {
      const bad = { signal } as unknown as number
      const touch = await rejectsLike(() => c.touch('k', bad), TypeError, /ttl/)
      assert.is(touch.message, 'ttl must be a number of milliseconds, got object (the ttl goes second, options third: touch(key, ttl, options))')
      assert.is((touch as Error & { code?: string }).code, 'FERROCACHE_BAD_ARGUMENT')
      const gat = await rejectsLike(() => c.gat('k', { encoding: 'utf8' } as unknown as number), TypeError, /ttl/)
      assert.is(gat.message, 'ttl must be a number of milliseconds, got object (the ttl goes second, options third: gat(key, ttl, options))')
    }
    assert.throws(() => cache.touchSync('k', { ttl: 5 } as unknown as number), /options third: touch\(key, ttl, options\)/)
    // the ttl left out: the same hint (it said only 'got undefined')
    const noTtl = undefined as unknown as number
    for (const c of [cache, client] as CacheLike[]) {
      const touch = await rejectsLike(() => c.touch('k', noTtl), TypeError, /ttl/)
      assert.is(touch.message, 'ttl must be a number of milliseconds, got undefined (the ttl goes second, options third: touch(key, ttl, options))')
      assert.is((touch as Error & { code?: string }).code, 'FERROCACHE_BAD_ARGUMENT')
      const gat = await rejectsLike(() => c.gat('k', noTtl), TypeError, /ttl/)
      assert.is(gat.message, 'ttl must be a number of milliseconds, got undefined (the ttl goes second, options third: gat(key, ttl, options))')
    }
    assert.throws(() => cache.gatSync('k', noTtl), /got undefined \(the ttl goes second, options third: gat\(key, ttl, options\)\)$/)
    // cas without its token, or with options in its place
    for (const c of [cache, client] as CacheLike[]) {
      for (const [token, got] of [[{ ttl: 1000 }, 'object'], [undefined, 'undefined']] as const) {
        const cas = await rejectsLike(() => c.cas('k', 'v', token as unknown as bigint), TypeError, /^cas must/)
        assert.is(cas.message, `cas must be a bigint or a number, got ${got} (the token from gets() goes third, options fourth: cas(key, value, entry.cas, options))`)
      }
    }
  } finally {
    cache.close()
    await client.close()
  }
})

test('await using a CacheLike closes it whichever class it is: Cache has Symbol.asyncDispose too', async () => {
  const made: CacheLike[] = []
  const open = (): CacheLike => {
    const c = new Cache()
    made.push(c)
    return c
  }
  {
    await using cache = open()
    await cache.set('k', 'v')
  }
  const cache = made[0] as Cache
  assert.is(cache.closed, true)
  const fresh = new Cache()
  const p = fresh[Symbol.asyncDispose]()
  assert.instance(p, Promise)
  await p
  assert.is(fresh.closed, true)
  await fresh[Symbol.asyncDispose]() // twice is harmless, as close() is
})

test('a bad option of new Cache, new Client, createServer or new KeyvFerrocache is a TypeError or RangeError with FERROCACHE_BAD_ARGUMENT, as a bad argument of a method', () => {
  const bad: Array<[string, () => unknown]> = [
    ['Cache memoryLimit', () => new Cache({ memoryLimit: 'lots' })],
    ['Cache maxItemSize', () => new Cache({ maxItemSize: '100mb' })],
    ['Cache hashPower', () => new Cache({ hashPower: 5 })],
    ['Cache slabSizes', () => new Cache({ slabSizes: [1] })],
    ['Cache growthFactor', () => new Cache({ growthFactor: 1 })],
    ['Cache save', () => new Cache({ dataDir: '/nonexistent-apiclient', save: 'sometimes' })],
    ['Cache unknown', () => new Cache({ max: 5 } as never)],
    ['Client no options', () => new Client(undefined as never)],
    ['Client servers string', () => new Client({ servers: '127.0.0.1:11211' as never })],
    ['Client server address', () => new Client({ servers: ['::1:11211'] })],
    ['Client timeout', () => new Client({ servers: ['127.0.0.1:1'], timeout: -1 })],
    ['Client protocol', () => new Client({ servers: ['127.0.0.1:1'], protocol: 'udp' as never })],
    ['Client unknown', () => new Client({ servers: ['127.0.0.1:1'], foo: 1 } as never)],
    ['Client tls', () => new Client({ servers: ['127.0.0.1:1'], tls: { servername: 1 } as never })],
    ['createServer port', () => createServer({ port: -5 })],
    ['createServer connLimit', () => createServer({ connLimit: 'many' as never })],
    ['createServer unknown', () => createServer({ prot: 1 } as never)],
    ['KeyvFerrocache prefix', () => new KeyvFerrocache({ prefix: 'a b' })],
    ['KeyvFerrocache long prefix', () => new KeyvFerrocache({ prefix: 'p'.repeat(33) })],
    ['KeyvFerrocache cache and servers', () => new KeyvFerrocache({ cache: {} as never, servers: ['127.0.0.1:1'] })],
    ['KeyvFerrocache null', () => new KeyvFerrocache(null as never)],
    ['KeyvFerrocache servers', () => new KeyvFerrocache({ servers: '127.0.0.1:11211' as never })],
  ]
  const uncoded: string[] = []
  for (const [name, make] of bad) {
    let err: unknown
    try {
      const made = make() as { close?: () => unknown }
      void made.close?.()
    } catch (e) {
      err = e
    }
    assert.ok(err instanceof TypeError || err instanceof RangeError, `${name}: ${String(err)}`)
    const code = (err as { code?: unknown }).code
    if (code !== 'FERROCACHE_BAD_ARGUMENT') uncoded.push(`${name}: ${String(code)} ${(err as Error).message}`)
  }
  assert.equal(uncoded, [])
})

test('util.inspect shows what a Cache and a Client are (closed, items, memory limit, servers), not the loaded Promise alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-inspect-'))
  const cache = new Cache({ memoryLimit: '8mb', dataDir: dir })
  const client = new Client({ servers: [`127.0.0.1:${silentPort}`], encoding: 'utf8' })
  try {
    cache.setSync('a', '1')
    cache.setSync('b', '2')
    const { bytes } = cache.statsSync()
    assert.ok(bytes > 0)
    const line = { breakLength: Infinity }
    assert.is(inspect(cache, line), `Cache { closed: false, encoding: 'buffer', items: 2, bytes: ${bytes}, memoryLimit: 8388608, dataDir: '${dir}' }`)
    assert.is(inspect({ cache }, { depth: 0 }), '{ cache: [Cache] }')
    assert.is(inspect(new Proxy(cache, {}), line), inspect(cache, line))
    inspect(Cache.prototype) // no engine, nor the Client's fields: no throw
    inspect(Client.prototype)
    assert.is(inspect(client, line), `Client { closed: false, protocol: 'meta', encoding: 'utf8', servers: [ { server: '127.0.0.1:${silentPort}', dead: false } ] }`)
    cache.close()
    await client.close()
    // after close(): no stats() (which throws then), nothing sent
    assert.is(inspect(cache, line), `Cache { closed: true, encoding: 'buffer', dataDir: '${dir}' }`)
    assert.match(inspect(client, line), /^Client \{ closed: true, protocol: 'meta'/)
  } finally {
    cache.close()
    await client.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

/** The names the docs' examples take as given (a user, a database, an id, a cache), as
 * globals a block's own declarations shadow. */
const GIVEN = `declare const user: { name: string }
declare const id: number
declare const db: { users: { find(id: number, options?: { signal?: AbortSignal }): Promise<{ name: string }> } }
declare const Cache: typeof import('ferrocache').Cache
type Cache<E extends import('ferrocache').Encoding = 'buffer'> = import('ferrocache').Cache<E>
declare const Client: typeof import('ferrocache').Client
declare const cache: import('ferrocache').CacheLike
declare const readFileSync: typeof import('node:fs').readFileSync
`

/** Every ```ts block of `file`; a block whose lines declare the same name twice shows
 * alternatives (`const cache = new Cache(…)` or `new Client(…)`), one a line. */
function tsBlocks(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8')
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].flatMap((m) => {
    const code = m[1]!
    const names = [...code.matchAll(/^const (\w+) =/gm)].map((d) => d[1])
    return new Set(names).size < names.length ? code.split('\n').filter((l) => l.trim() !== '') : [code]
  })
}

test('the TypeScript examples of README.md and docs/ type-check under strict TypeScript, and await using takes a CacheLike', () => {
  const dir = mkdtempSync(join(ROOT, 'node_modules', '.ferrocache-examples-'))
  try {
    const files: string[] = ['given.d.ts']
    writeFileSync(join(dir, 'given.d.ts'), GIVEN)
    const origin = new Map<string, string>()
    for (const doc of ['README.md', 'docs/client.md', 'docs/persistence.md']) {
      tsBlocks(doc).forEach((code, i) => {
        const name = `${doc.replace(/\W/g, '_')}_${i}.mts`
        origin.set(name, `${doc} block ${i}:\n${code}`)
        writeFileSync(join(dir, name), `${code}\nexport {}\n`)
        files.push(name)
      })
    }
    assert.ok(files.length >= 12, `${files.length - 1} examples found`)
    // `await using` needs the shared interface to declare Symbol.asyncDispose
    writeFileSync(join(dir, 'dispose.mts'), `import { Cache, Client, createServer, type CacheLike } from 'ferrocache'
export async function use(open: () => CacheLike<'utf8'>): Promise<void> {
  await using c = open()
  const text: string | undefined = await c.get('k', { signal: AbortSignal.timeout(100) })
  // the getters both classes have are the interface's too
  const encoding: 'utf8' = c.encoding
  const closed: boolean = c.closed
  void [text, encoding, closed]
}
// options passed on as they come (exactOptionalPropertyTypes): undefined is taken, as in
// @types/node's options (signal?: AbortSignal | undefined)
export async function passOn(c: CacheLike<'utf8'>, signal: AbortSignal | undefined, ms: number | undefined, size: string | undefined): Promise<void> {
  const encoding: 'utf8' | undefined = ms === undefined ? undefined : 'utf8'
  const text: string | undefined = await c.get('k', { signal, encoding })
  await c.set('k', text ?? 'v', { ttl: ms, flags: ms, signal })
  await c.delete('k', { signal })
  await c.fetch('k', () => 'v', { ttl: ms, timeout: ms, signal })
  new Cache({ memoryLimit: size, hashPower: ms, dataDir: size, logger: undefined }).close()
  await new Client({ servers: ['127.0.0.1:1'], timeout: ms, protocol: undefined, tls: undefined }).close()
  const server = createServer({ port: ms, host: size, logger: undefined, listen: [{ host: '127.0.0.1', port: ms, tls: undefined }] })
  await server.close()
}
// a Cache of any encoding is served (the server reads its bytes), and server.cache keeps its type
export function serveJson(): import('ferrocache').Cache<'json'> {
  return createServer({ cache: new Cache({ encoding: 'json' }) }).cache
}
`)
    files.push('dispose.mts')
    const ts = require('typescript') as typeof TS
    const src = join(ROOT, 'src')
    const { options, errors: bad } = ts.convertCompilerOptionsFromJson(
      {
        strict: true,
        noUncheckedIndexedAccess: true,
        exactOptionalPropertyTypes: true,
        noEmit: true,
        module: 'esnext',
        moduleResolution: 'bundler',
        target: 'es2022',
        lib: ['es2022'],
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        // the checkout's source as 'ferrocache' (packaging.test.ts checks the built .d.ts)
        paths: { ferrocache: [join(src, 'index.ts')], 'ferrocache/keyv': [join(src, 'adapters', 'keyv.ts')] },
      },
      dir,
    )
    assert.equal(bad, [])
    const program = ts.createProgram(files.map((f) => join(dir, f)), options)
    // the examples' own errors (the source is checked under its own settings by tsc)
    const diagnostics = files.flatMap((f) => {
      const file = program.getSourceFile(join(dir, f))!
      return [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
    })
    const errors = diagnostics
      .map((d) => `${origin.get(d.file?.fileName.replace(/^.*\//, '') ?? '') ?? d.file?.fileName}\n  -> ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
      .join('\n\n')
    assert.is(errors, '', errors)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
