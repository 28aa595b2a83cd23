// What a new user meets first, beyond the README's examples (readme-examples.test.ts): a
// Promise passed for a key or value (a missing await), a ttl or encoding passed where
// options go (as memcached clients and Keyv take them), and
// the start-up of ferrocached with a data directory it cannot write to. Runs dist/ (npm run
// build first). The user switch needs root (CI runs as root); without it that test checks
// nothing and says so.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setUp, tearDown } from './helpers/guard'
import { Cache, Client, SnapshotError, createServer } from '../src'
import { rejectsLike, throwsLike } from './cache-assert'
import { BIN, freePort, spawnOwned, stopChild, waitFor } from './helpers/servers'
import { parseCommandLine } from '../src/cli/options'
import { HELP } from '../src/cli/help'

const NOBODY = 65534
const isRoot = process.getuid?.() === 0

let dir = ''
setUp(test, () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrocache-review-journey-'))
  chmodSync(dir, 0o755)
})
tearDown(test, () => rmSync(dir, { recursive: true, force: true }))

test('a Promise for a key, value or delta (a missing await) is named so, and never stored as JSON', async () => {
  const cache = new Cache()
  const json = new Cache({ encoding: 'json' })
  const client = new Client({ servers: ['127.0.0.1:1'] }) // refused before any connection
  const pending = Promise.resolve('user:1')
  const missing = /got Promise \(is an await missing\?\)/
  try {
    for (const call of [
      () => cache.getSync(pending as never), // native key check
      () => cache.setSync(pending as never, 'v'),
      () => cache.getManySync([pending as never]),
      () => cache.setSync('k', pending as never), // native value check
      () => cache.setManySync([['k', pending as never]]),
      () => cache.incrSync('n', pending as never),
    ]) {
      throwsLike(call, TypeError, missing)
    }
    // JSON.stringify makes '{}' of it: refused, nothing stored
    throwsLike(() => json.setSync('k', pending), TypeError, /^value cannot be encoded as JSON \(Promise \(is an await missing\?\)\)$/)
    assert.is(json.getSync('k'), undefined)
    await rejectsLike(() => client.get(pending as never), TypeError, missing)
    await rejectsLike(() => client.set('k', pending as never), TypeError, missing)
  } finally {
    cache.close()
    json.close()
    await client.close()
  }
})

test('a positional ttl or encoding is refused with the options object it should have been', async () => {
  const cache = new Cache()
  const client = new Client({ servers: ['127.0.0.1:1'] }) // refused before any connection
  try {
    const ttl = /^options must be an object, got number \(a ttl goes as \{ ttl: ms \}: 60000 ms is \{ ttl: 60000 \}, 60000 s is \{ ttl: 60000000 \}\)$/
    // memcached clients' lifetime is seconds: the hint must not make 60 s into { ttl: 60 } alone
    throwsLike(() => cache.setSync('k', 'v', 60 as never), TypeError, /\(a ttl goes as \{ ttl: ms \}: 60 ms is \{ ttl: 60 \}, 60 s is \{ ttl: 60000 \}\)$/)
    throwsLike(() => cache.setSync('k', 'v', -1 as never), TypeError, /got number \(a ttl goes as \{ ttl: ms \}\)$/)
    const utf8 = /^options must be an object, got string \(an encoding goes as \{ encoding: 'utf8' \}\)$/
    throwsLike(() => cache.setSync('k', 'v', 60_000 as never), TypeError, ttl)
    await rejectsLike(() => cache.set('k', 'v', 60_000 as never), TypeError, ttl)
    await rejectsLike(() => client.set('k', 'v', 60_000 as never), TypeError, ttl)
    await rejectsLike(() => client.fetch('k', () => 'v', 60_000 as never), TypeError, ttl)
    throwsLike(() => cache.getSync('k', 'utf8' as never), TypeError, utf8)
    await rejectsLike(() => client.get('k', 'utf8' as never), TypeError, utf8)
    // no hint where none fits: a number for read options, a string that is no encoding
    throwsLike(() => cache.getSync('k', 5 as never), TypeError, /^options must be an object, got number$/)
    throwsLike(() => cache.getSync('k', 'hex' as never), TypeError, /^options must be an object, got string$/)
  } finally {
    cache.close()
    await client.close()
  }
})

test('createServer with something else than a Cache names what it got', async () => {
  const client = new Client({ servers: ['127.0.0.1:1'] })
  try {
    for (const [cache, got] of [[client, 'Client'], [new Map(), 'Map'], [null, 'null']] as const) {
      throwsLike(() => createServer({ cache: cache as never }), TypeError, new RegExp(`^cache must be an embedded Cache \\(new Cache\\(\\)\\), got ${got}$`))
    }
  } finally {
    await client.close()
  }
})

test("createServer given a Cache of another copy of the module says so (it failed reading the class's private field)", () => {
  // dist/ is another copy of src/: its Cache class is not this one
  const other = require(join(__dirname, '..', 'dist')) as { Cache: typeof Cache }
  const cache = new other.Cache()
  try {
    throwsLike(() => createServer({ cache }), TypeError, /^cache is a Cache from another copy of the ferrocache module .*: create it with the same import as createServer$/)
  } finally {
    cache.close()
  }
})

test('a dataDir that is a file is named as such (the engine said "cannot create the data directory …: File exists")', () => {
  const file = join(dir, 'a-file')
  writeFileSync(file, '')
  const err = throwsLike(() => new Cache({ dataDir: file }), SnapshotError, /^the data directory .*a-file is not a directory$/)
  assert.is((err as SnapshotError).code, 'FERROCACHE_SNAPSHOT_IO')
})

test('--data-dir the process cannot write to: a warning at start, before listening (every save would fail, seen only at stop)', async () => {
  if (!isRoot) {
    console.log('    (not root: cannot start ferrocached as another user; nothing checked)')
    return
  }
  const readOnly = join(dir, 'data')
  mkdirSync(readOnly, { mode: 0o755 }) // root's: nobody reads it, cannot write it
  const child = spawnOwned(process.execPath, [BIN, '-p', String(await freePort()), '--data-dir', readOnly], {
    uid: NOBODY,
    gid: NOBODY,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  try {
    assert.ok(await waitFor(() => stderr.includes('"listening"') || child.exitCode !== null, 15_000), `no start:\n${stderr}`)
    const lines = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; dataDir?: string })
    const warning = lines.findIndex((l) => l.level === 40 && l.msg.startsWith('the data directory is not writable by this process'))
    assert.ok(warning >= 0, `no warning:\n${stderr}`)
    assert.is(lines[warning]!.dataDir, readOnly)
    assert.ok(warning < lines.findIndex((l) => l.msg === 'listening'), 'warned before listening')
  } finally {
    await stopChild(child)
  }
})

// The Node types the shipped declarations (dist/**/*.d.ts) name, each checked present in
// @types/node 20.19 and 26.6 (what `npm i -D @types/node` installed on 2026-11-27): with
// skipLibCheck off a consumer's compiler reads them all. util's InspectOptionsStylized, which
// 26 renamed InspectContext, broke every TypeScript consumer there. A name added to the
// declarations goes in this list once checked in the newest @types/node.
const NODE_TYPES = new Set([
  'events.EventEmitter',
  'net.AddressInfo',
  'net.Server',
  'net.Socket',
  'tls.ConnectionOptions',
  'tls.SecureContext',
  'tls.Server',
  'tls.TLSSocket',
  'tls.connect', // these two in doc comments
  'tls.createServer',
  'util.InspectOptions',
  'util.inspect',
  'util.parseArgs',
])

test('the shipped declarations name only Node types every @types/node from 20 to 26 has', () => {
  const dist = join(__dirname, '..', 'dist')
  const named = new Map<string, string>() // 'module.Name' -> the first file naming it
  for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(join(dist, file), 'utf8')
    for (const m of text.matchAll(/^import (?:type )?(?:\* as (\w+)|\{([^}]*)\}) from 'node:(\w+)'/gm)) {
      const [, ns, names, mod] = m
      if (ns !== undefined) for (const use of text.matchAll(new RegExp(`\\b${ns}\\.(\\w+)`, 'g'))) named.set(`${mod}.${use[1]}`, file)
      for (const name of names?.split(',') ?? []) {
        const bare = name.replace(/^\s*type\s+/, '').replace(/\s+as\s+\w+/, '').trim()
        if (bare !== '') named.set(`${mod}.${bare}`, file)
      }
    }
  }
  assert.ok(named.size >= 5, `only ${[...named.keys()].join(', ')} found: the pattern no longer reads the imports`)
  const unchecked = [...named].filter(([name]) => !NODE_TYPES.has(name)).map(([name, file]) => `${name} (${file})`)
  assert.equal(unchecked, [], 'not checked against the newest @types/node')
})

test("ferrocached -m's refusal gives examples in megabytes (it offered 512k, itself refused as under 1 MB)", () => {
  const refusal = (argv: string[]): string => {
    try {
      parseCommandLine(argv)
    } catch (err) {
      return (err as Error).message
    }
    return 'accepted'
  }
  assert.is(refusal(['-m', '-5']), '-m/--memory-limit must be a size such as 64 (megabytes), 512m or 2g, got "-5"')
  // each example is taken
  for (const m of ['64', '512m', '2g']) assert.is(refusal(['-m', m]), 'accepted', m)
  // sizes counted in bytes keep theirs
  assert.is(refusal(['--repl-backlog', 'lots']), '--repl-backlog must be a size such as 1024, 512k or 1m, got "lots"')
})

test('the flags --help calls ignored are those the command line takes and ignores (it said "-t -k -r: README")', () => {
  const listed = /(-\w(?: -\w)*): ignored;/.exec(HELP)?.[1]?.split(' ')
  assert.equal(listed, ['-t', '-k', '-r'], HELP)
  for (const flag of listed ?? []) {
    const c = parseCommandLine(flag === '-t' ? [flag, '4'] : [flag])
    if (c.kind !== 'run') throw new Error(`${flag}: ${c.kind}`)
    assert.ok(c.settings.notes?.some((n) => n.startsWith(flag) && n.includes('accepted and ignored')), `${flag}: ${c.settings.notes?.join('; ')}`)
  }
})

test('a stored value that is not JSON, read as JSON, says so with a code and the way out (it was a bare SyntaxError)', async () => {
  const cache = new Cache({ encoding: 'json' })
  const server = createServer({ cache, port: 0 })
  const { port } = await server.listen()
  const clients = (['meta', 'text', 'binary'] as const).map((protocol) => new Client({ servers: [`127.0.0.1:${port}`], encoding: 'json', protocol }))
  try {
    cache.setSync('plain', 'hello', { encoding: 'utf8' }) // as a memcached client would store it
    cache.setSync('ok', { a: 1 })
    const notJson = /^the stored value is not JSON \(.*\); read it with \{ encoding: 'utf8' \} or 'buffer'$/
    const check = (err: unknown): void => {
      assert.instance(err, SyntaxError)
      assert.match((err as Error).message, notJson)
      assert.is((err as { code?: string }).code, 'FERROCACHE_BAD_JSON')
    }
    for (const read of [() => cache.getSync('plain'), () => cache.getsSync('plain'), () => cache.getManySync(['ok', 'plain'])]) check(throwsLike(read, SyntaxError, notJson))
    for (const client of clients) {
      check(await rejectsLike(() => client.get('plain'), SyntaxError, notJson))
      // the connection reads on: the next reply is the next request's
      assert.equal(await client.get('ok'), { a: 1 }, client.protocol)
      assert.is(await client.get('plain', { encoding: 'utf8' }), 'hello')
    }
  } finally {
    for (const client of clients) await client.close()
    await server.close()
    cache.close()
  }
})

test("lru-cache's options in new Cache() say where each goes here (ttl, max, maxSize, fetchMethod)", () => {
  const known = /; known: memoryLimit, /
  for (const [option, hint] of [
    ['ttl', 'a ttl goes with each write: set(key, value, { ttl })'],
    ['max', "the bound is bytes: memoryLimit, e.g. '64mb'"],
    ['maxSize', "the bound is bytes: memoryLimit, e.g. '64mb'"],
    ['fetchMethod', 'the loader goes with each call: fetch(key, loader, options)'],
  ] as const) {
    const err = throwsLike(() => new Cache({ [option]: 1 } as never), TypeError, new RegExp(`^unknown option '${option}' in options \\(`))
    assert.ok(err.message.includes(`(${hint}; known: `), err.message)
    assert.match(err.message, known)
  }
  // per-call options and other names: the list alone
  const cache = new Cache()
  try {
    throwsLike(() => cache.getSync('k', { ttl: 5 } as never), TypeError, /^unknown option 'ttl' in options \(known: encoding, signal\)$/)
  } finally {
    cache.close()
  }
  throwsLike(() => new Cache({ dispose: 1 } as never), TypeError, /^unknown option 'dispose' in options \(known: memoryLimit, /)
})

test("setMany given an object, or Keyv's { key, value } entries, says what it got and the shape meant (it said only 'must be an iterable')", async () => {
  const cache = new Cache()
  const client = new Client({ servers: ['127.0.0.1:1'] }) // refused before any connection
  try {
    const object = /^entries must be an iterable of \[key, value\] pairs, got Object \(an object: Object\.entries\(object\)\)$/
    const keyv = /^entries must hold \[key, value\] pairs, got Object \(\{ key, value \} objects as Keyv takes them: \[key, value\] here\)$/
    throwsLike(() => cache.setManySync({ a: '1' } as never), TypeError, object)
    await rejectsLike(() => client.setMany({ a: '1' } as never), TypeError, object)
    throwsLike(() => cache.setManySync([{ key: 'a', value: '1' }] as never), TypeError, keyv)
    await rejectsLike(() => client.setMany([{ key: 'a', value: '1' }] as never), TypeError, keyv)
    // other shapes: what was given, no hint
    throwsLike(() => cache.getManySync(5 as never), TypeError, /^keys must be an iterable of keys, got number$/)
    throwsLike(() => cache.setManySync([5] as never), TypeError, /^entries must hold \[key, value\] pairs, got number$/)
  } finally {
    cache.close()
    await client.close()
  }
})

test.run()
