// Adversarial review of the embedded Cache as a Node developer uses it (issue 2): inputs a
// JS caller can pass that TypeScript would not, and the module loaded twice in one thread.
// Each test here failed before its fix.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Cache } from '../src'
import { throwsLike } from './cache-assert'

const SRC = JSON.stringify(join(__dirname, '..', 'src'))

/** Runs `script` in a fresh node (with tsx) and returns its stdout lines; the process must
 * exit 0 (a native abort or a thrown error fails the test with its stderr). */
function runNode(script: string): string[] {
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  assert.is(r.status, 0, `exit ${r.status} signal ${r.signal}: ${r.stderr}`)
  return r.stdout.trim().split('\n')
}

test('a batch given a sparse array of length 2^32-1 is refused, not a native abort', () => {
  // KeyList reserved room for `length` keys before reading one: 100 GB, and the
  // allocation failure aborted the process.
  const lines = runNode(`
    const { Cache } = require(${SRC})
    const cache = new Cache()
    const keys = ['x']
    keys.length = 2 ** 32 - 1
    for (const call of [() => cache.getManySync(keys), () => cache.deleteManySync(keys), () => cache.getManySync(['a', , 'b'])]) {
      try { call(); console.log('returned') } catch (e) { console.log(e.constructor.name + ': ' + e.message) }
    }
    cache.close()`)
  assert.equal(lines, ['TypeError: keys[1] must be a string, got undefined', 'TypeError: keys[1] must be a string, got undefined', 'TypeError: keys[1] must be a string, got undefined'])
})

test('keys with a lone surrogate are refused instead of colliding as U+FFFD', () => {
  // UTF-8 cannot hold a lone surrogate: napi replaced it with U+FFFD, so 'k\uD800',
  // 'k\uDC00' and 'k\uFFFD' were one key and a set of one overwrote the others.
  const cache = new Cache({ encoding: 'utf8' })
  cache.setSync('k\uFFFD', 'replacement character')
  for (const key of ['k\uD800', 'k\uDC00', '\uDC00', 'a\uD800b', `${'a'.repeat(200)}\uDBFF`]) {
    throwsLike(() => cache.setSync(key, 'v'), TypeError, /^key must be well-formed Unicode: a lone surrogate \(0x[0-9a-f]{4}\) at index \d+$/)
    throwsLike(() => cache.getSync(key), TypeError, /lone surrogate/)
    throwsLike(() => cache.deleteSync(key), TypeError, /lone surrogate/)
  }
  throwsLike(() => cache.getManySync(['ok', 'k\uD800']), TypeError, /^keys\[1\] must be well-formed Unicode/)
  assert.is(cache.getSync('k\uFFFD'), 'replacement character')
  // a pair is a character: stored as its 4 UTF-8 bytes, distinct from its halves' U+FFFD
  assert.ok(cache.setSync('k\uD83D\uDE00', 'emoji'))
  assert.is(cache.getSync('k\u{1F600}'), 'emoji')
  assert.is(cache.getSync('k\uFFFD'), 'replacement character')
  cache.close()
})

test('a value viewing a detached ArrayBuffer is refused, not stored empty', () => {
  // A transferred buffer's views read as 0 bytes: the write "succeeded" with an empty value.
  const cache = new Cache()
  const buffer = new ArrayBuffer(16)
  const view = new Uint8Array(buffer).fill(7)
  structuredClone(buffer, { transfer: [buffer] })
  throwsLike(() => cache.setSync('k', view), TypeError, /^value is a view of a detached ArrayBuffer/)
  throwsLike(() => cache.appendSync('k', view), TypeError, /detached/)
  throwsLike(() => cache.setManySync([['k', view]]), TypeError, /value of 'k' is a view of a detached ArrayBuffer|detached/)
  assert.is(cache.hasSync('k'), false)
  // empty values of live buffers are still fine
  assert.ok(cache.setSync('k', new Uint8Array(0)))
  assert.ok(cache.setSync('k2', Buffer.alloc(8).subarray(8)))
  assert.is(cache.getSync('k')?.length, 0)
  cache.close()
})

test('a string where an iterable of keys belongs is refused, not read as one key per character', () => {
  // deleteMany('user:1') deleted 'u', 's', 'e', 'r', ':' and '1'.
  const cache = new Cache()
  for (const k of ['u', 's', 'e', 'r', ':', '1']) cache.setSync(k, k)
  throwsLike(() => cache.deleteManySync('user:1' as unknown as string[]), TypeError, /^keys must be an iterable of keys, not a string/)
  throwsLike(() => cache.getManySync('user:1' as unknown as string[]), TypeError, /not a string/)
  throwsLike(() => cache.setManySync('ab' as unknown as [string, string][]), TypeError, /^entries must be an iterable of \[key, value\] pairs, not a string/)
  assert.is(cache.statsSync().curr_items, 6)
  cache.close()
})

test('two copies of the module in one thread (jest.resetModules, cleared require.cache) read their own values', () => {
  // Each copy of src/scratch.ts registered its own read pool; the native side wrote into the
  // newest, so Buffer reads through the older copy returned another pool's bytes.
  // With the .node reloaded as well (a second napi env), the older copy read a scratch
  // buffer the native side no longer wrote to.
  for (const dropNative of [false, true]) {
    const lines = runNode(`
      const A = require(${SRC})
      const a = new A.Cache()
      a.setSync('k', 'from-a', { flags: 7 })
      for (const k of Object.keys(require.cache)) {
        if (k.includes('/src/') || (${dropNative} && k.endsWith('.node'))) delete require.cache[k]
      }
      const B = require(${SRC})
      if (A.Cache === B.Cache) throw new Error('the module was not loaded twice')
      const b = new B.Cache()
      b.setSync('k', 'from-b, longer')
      const out = []
      for (let i = 0; i < 3; i++) {
        out.push(b.getSync('k').toString(), a.getSync('k').toString(), a.getSync('k', { encoding: 'utf8' }))
        const e = a.getsSync('k')
        out.push(e.value.toString() + ' ' + e.flags, a.getManySync(['k']).get('k').toString())
        out.push(b.getSync('k', { encoding: 'utf8' }))
      }
      console.log(JSON.stringify(out))`)
    const round = ['from-b, longer', 'from-a', 'from-a', 'from-a 7', 'from-a', 'from-b, longer']
    assert.equal(JSON.parse(lines[0]), [...round, ...round, ...round], dropNative ? 'native reloaded' : 'native shared')
  }
})

// For the child scripts below: one request on a fresh connection, its reply up to END.
const ASK = `const ask = (port, text) => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(text))
      let got = ''
      s.on('data', (d) => { got += d; if (got.endsWith('END\\r\\n')) { s.destroy(); resolve(got) } })
      s.on('error', (e) => resolve('error ' + e.message))
      setTimeout(() => { s.destroy(); resolve('no reply: ' + JSON.stringify(got)) }, 2000)
    })`

// For the child scripts below: a server of the module as loaded first (A), then `loadB` loads
// it again (B) and serves from that copy too; prints both servers' replies (an item set
// through A is seen through A, not B: each copy has its own cache).
const serveTwoCopies = (loadB: string): string => `;(async () => {
      const A = require(SERVER)
      const a = A.createServer({ port: 0, host: '127.0.0.1' })
      await a.listen()
      const out = [await ask(a.address().port, 'set k 0 0 1\\r\\nx\\r\\nget k\\r\\n')]
      ${loadB}
      const b = B.createServer({ port: 0, host: '127.0.0.1' })
      await b.listen()
      out.push(await ask(a.address().port, 'get k\\r\\n'), await ask(b.address().port, 'get k\\r\\n'))
      await a.close()
      await b.close()
      console.log(JSON.stringify(out))
    })()`

test("two copies of the module in one thread: the first copy's server still reads its own sockets", () => {
  // The native side keeps one registered read buffer per thread (e122fbd): the second copy
  // registered its own, and the first copy's server fed requests from that one (no reply).
  const lines = runNode(`
    const net = require('node:net')
    const SERVER = require('node:path').join(${SRC}, 'server')
    ${ASK}
    ${serveTwoCopies(`
      for (const k of Object.keys(require.cache)) if (k.includes('/src/')) delete require.cache[k]
      const B = require(SERVER)
      if (A.createServer === B.createServer) throw new Error('the module was not loaded twice')`)}`)
  assert.equal(JSON.parse(lines[0]!), ['STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n', 'VALUE k 0 1\r\nx\r\nEND\r\n', 'END\r\n'])
})

test("the module loaded again in a vm context (jest's test environment): the first realm's server still reads its sockets", () => {
  // The realm's globals said which copy's read buffer was registered (70b024d): a copy in
  // another realm of the thread registered its own and set its own globals, and the first
  // realm's server then fed its requests from the other buffer (no reply).
  const lines = runNode(`
    const net = require('node:net'), vm = require('node:vm'), fs = require('node:fs'), Module = require('node:module')
    const { transformSync } = require('esbuild')
    const SERVER = require('node:path').join(${SRC}, 'server')
    ${ASK}
    // src's files evaluated in a new context, as jest's runtime does; packages and the
    // native binary come from this realm (jest loads addons that way too)
    const context = vm.createContext({ console, process, Buffer, setTimeout, clearTimeout, setImmediate, clearImmediate, setInterval, clearInterval, queueMicrotask, URL, TextEncoder, TextDecoder })
    const loaded = new Map()
    const load = (from, id) => {
      const file = Module.isBuiltin(id) ? id : Module.createRequire(from).resolve(id)
      if (!file.endsWith('.ts')) return require(file)
      if (!loaded.has(file)) {
        const module = { exports: {} }
        loaded.set(file, module)
        const code = transformSync(fs.readFileSync(file, 'utf8'), { loader: 'ts', format: 'cjs', target: 'node20' }).code
        vm.runInContext('(function (exports, require, module, __filename, __dirname) {' + code + '\\n})', context, { filename: file })(
          module.exports, (i) => load(file, i), module, file, require('node:path').dirname(file))
      }
      return loaded.get(file).exports
    }
    ${serveTwoCopies(`
      const B = load(require.resolve(SERVER), SERVER)`)}`)
  assert.equal(JSON.parse(lines[0]!), ['STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n', 'VALUE k 0 1\r\nx\r\nEND\r\n', 'END\r\n'])
})

test('a ttl over 30 days counts from the engine clock, not a faked Date.now()', () => {
  // memcached reads an exptime over 30 days as a unix time, which was computed from
  // Date.now(): with a test's fake clock in the past (jest/sinon setSystemTime) the item
  // expired as it was stored, and set() still returned true.
  const cache = new Cache()
  const realNow = Date.now
  const day = 86_400_000
  try {
    Date.now = () => Date.UTC(2020, 0, 1)
    assert.ok(cache.setSync('set', 'v', { ttl: 31 * day }))
    cache.setManySync([['setMany', 'v']], { ttl: 40 * day })
    cache.setSync('touched', 'v')
    assert.ok(cache.touchSync('touched', 60 * day))
    cache.setSync('gat', 'v')
    assert.is(cache.gatSync('gat', 90 * day)?.toString(), 'v')
    for (const key of ['set', 'setMany', 'touched', 'gat']) assert.ok(cache.hasSync(key), `${key} was stored expired`)
  } finally {
    Date.now = realNow
  }
  cache.close()
})

test('caches dropped without close() are collected by ordinary GCs, not only forced ones', () => {
  // V8 saw each cache as a small object, so nothing prompted a GC for its slab pages: 100
  // filled 4 MiB caches dropped one after another (little JS garbage) kept all ~400 MiB.
  // The cache now reports its memory limit to V8 as external memory.
  const [grown] = runNode(`
    const { Cache } = require(${SRC})
    const keys = Array.from({ length: 1000 }, (_, i) => 'k' + i)
    const value = Buffer.alloc(4000, 1)
    const before = process.memoryUsage.rss()
    let max = 0
    ;(async () => {
      for (let round = 0; round < 100; round++) {
        const cache = new Cache({ memoryLimit: '4mb' })
        for (const k of keys) cache.setSync(k, value)
        max = Math.max(max, process.memoryUsage.rss() - before)
        await new Promise((r) => setImmediate(r)) // napi finalizers run between turns
      }
      process.stdout.write(String(Math.round(max / 2 ** 20)))
    })()`)
  assert.ok(Number(grown) < 250, `RSS grew by ${grown} MiB for 100 dropped 4 MiB caches`)
})

test('an empty cache with a large memory limit does not make V8 collect', () => {
  // The memory limit was reported to V8 as external memory whole, so every empty 1 GiB
  // cache pushed V8 over its external-memory limit and started a full GC (8 to 15 for these
  // 20). Now only the slab pages a cache holds count (the dropped-cache test above checks
  // that a filled cache's pages still do). Node's process.memoryUsage().external never showed
  // that figure: it counts ArrayBuffers only.
  const [major] = runNode(`
    const { Cache } = require(${SRC})
    const { PerformanceObserver, constants } = require('node:perf_hooks')
    let major = 0
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++
    })
    obs.observe({ entryTypes: ['gc'] })
    const caches = []
    ;(async () => {
      for (let i = 0; i < 20; i++) {
        caches.push(new Cache({ memoryLimit: '1gb' }))
        await new Promise((r) => setImmediate(r))
      }
      await new Promise((r) => setTimeout(r, 50)) // gc entries are delivered later
      for (const cache of caches) cache.close()
      obs.disconnect()
      process.stdout.write(String(major))
    })()`)
  assert.ok(Number(major) <= 2, `${major} full GCs while 20 empty 1 GiB caches were made`)
})

test('a value JSON cannot encode is a TypeError naming it and its key', () => {
  // JSON.stringify's own TypeError ("Do not know how to serialize a BigInt") named neither,
  // so a failed setMany of many entries did not say which one.
  const cache = new Cache({ encoding: 'json' })
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  const err = throwsLike(() => cache.setManySync([['a', 1], ['b', 2n]]), TypeError, /^value of 'b' cannot be encoded as JSON: .*BigInt/)
  assert.instance(err.cause, TypeError)
  throwsLike(() => cache.setSync('c', cyclic), TypeError, /^value cannot be encoded as JSON: Converting circular structure/)
  const thrower = { toJSON: () => { throw new RangeError('nope') } }
  throwsLike(() => cache.setSync('t', thrower), RangeError, /^nope$/) // the value's own error, as it is
  assert.is(cache.statsSync().curr_items, 0)
  cache.close()
})

test('keys in a Proxy of an array (Vue reactive, MobX observable) work in getMany and deleteMany', () => {
  // Array.isArray is true for such a Proxy, so it went to napi as it was, which reads only
  // real arrays: 'keys must be an array, got object'.
  const cache = new Cache({ encoding: 'utf8' })
  cache.setManySync(new Proxy([['a', '1'], ['b', '2']] as [string, string][], {}))
  const keys = new Proxy(['a', 'b', 'c'], {})
  assert.equal([...cache.getManySync(keys)], [['a', '1'], ['b', '2']])
  assert.is(cache.deleteManySync(keys), 2)
  cache.close()
})

test('a constructor that throws over its dataDir leaves no engine running', () => {
  // The engine was built before the persistence layer threw (another cache holds the
  // directory's lock), and nothing closed it: its background thread and memory stayed
  // until a GC. Threads of this process counted in /proc (Linux).
  const lines = runNode(`
    const { Cache } = require(${SRC})
    const { mkdtempSync, readdirSync } = require('node:fs')
    const dir = mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'review-cache-'))
    const threads = () => readdirSync('/proc/self/task').length
    const holder = new Cache({ dataDir: dir, saveOnClose: false })
    const before = threads()
    for (let i = 0; i < 3; i++) {
      try { new Cache({ dataDir: dir }); console.log('opened') } catch (e) { console.log(e.name) }
    }
    console.log(String(threads() - before))
    holder.close()
    require('node:fs').rmSync(dir, { recursive: true })`)
  assert.equal(lines, ['SnapshotError', 'SnapshotError', 'SnapshotError', '0'])
})

test('a value larger than the read pool does not throw the pool away', () => {
  // It never fits a pool, yet every such read started a new 64 KiB pool (a native call and
  // 64 KiB of garbage per read) though the current one was nearly empty.
  const cache = new Cache()
  cache.setSync('small', 'x')
  cache.setSync('large', Buffer.alloc(100_000, 1))
  const before = cache.getSync('small') as Buffer
  for (let i = 0; i < 3; i++) assert.is(cache.getSync('large')?.length, 100_000)
  const after = cache.getSync('small') as Buffer
  assert.ok(before.buffer === after.buffer, 'a new pool was started')
  assert.is(after.toString(), 'x')
  cache.close()
})

test.run()
