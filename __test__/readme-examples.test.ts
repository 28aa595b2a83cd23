// README's TypeScript examples (and docs/persistence.md's) run as a new user would run
// them: each block is taken from README.md as it is, given the few names it assumes
// (`user`, `db`, `id`), and run in a fresh node process that imports 'ferrocache' by name
// (the package resolves itself from the checkout: needs dist/, `npm run build`). Addresses
// of servers that exist only in the example are pointed at local servers; `./data` at a
// temporary directory. The sections' `npx ferrocached …` lines are started as written, on
// free ports, each in a directory of its own.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, ROOT, freePort, spawnOwned, stopChild, waitFor } from './helpers/servers'

const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** The `index`-th ```ts (or `lang`) block under the `## heading` section of README.md. */
function block(heading: string, index = 0, lang = 'ts'): string {
  const start = README.indexOf(`\n## ${heading}\n`)
  assert.ok(start >= 0, `README has no section "${heading}"`)
  const end = README.indexOf('\n## ', start + 1)
  const section = README.slice(start, end === -1 ? undefined : end)
  const blocks = [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!)
  assert.ok(blocks.length > index, `README section "${heading}" has no ts block #${index}`)
  return blocks[index]!
}

/** Runs `code` as an ES module (or CommonJS) in a fresh node, from the checkout. */
function runNode(code: string, kind: 'module' | 'commonjs' = 'module'): string {
  const r = spawnSync(process.execPath, [`--input-type=${kind}`, '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  assert.is(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n--- code ---\n${code}\n--- stderr ---\n${r.stderr}`)
  return r.stdout
}

const USER = "const user = { name: 'ada' }\n"

/** Servers on free ports for the examples that talk to some; `close()` after the example. */
const SERVERS = (n: number): string => `
import { Cache as ExampleCache, createServer as exampleServer } from 'ferrocache'
const exampleServers = []
for (let i = 0; i < ${n}; i++) {
  const server = exampleServer({ cache: new ExampleCache(), port: 0 })
  exampleServers.push({ server, port: (await server.listen()).port })
}
`
const CLOSE_SERVERS = '\nfor (const { server } of exampleServers) await server.close()\n'

test('Embedded API: the example runs as an ES module and as CommonJS, with the results its comments say', () => {
  const code = block('Embedded API')
  const checks = `
if (!Buffer.isBuffer(buf) || JSON.parse(buf.toString()).name !== 'ada') throw new Error('get: ' + buf)
if (!entry || typeof entry.cas !== 'bigint' || entry.flags !== 0) throw new Error('gets: ' + String(entry))
if ((await json.get('user:1')).seen !== true) throw new Error('cas did not store')
console.log('ok')
`
  assert.is(runNode(USER + code + checks).trim(), 'ok')
  // The CommonJS form the first line's comment gives.
  const cjs = code.replace(/^import \{ Cache \} from 'ferrocache'.*$/m, "const { Cache } = require('ferrocache')")
  assert.is.not(cjs, code, 'the import line changed')
  assert.is(runNode(`(async () => {\n${USER}${cjs}${checks}})().catch((e) => { console.error(e); process.exit(1) })`, 'commonjs').trim(), 'ok')
  // The comment on incrSync says 1n.
  assert.match(code, "cache.incrSync('hits') // 1n")
})

test('Coming from lru-cache: the example runs, with the results its comments and table say', () => {
  const code = block('Coming from lru-cache')
  const checks = `
const id = 7
${code.replace(/^import .*$/m, '').replace('cache.hasSync(`user:${id}`) ', 'const had = cache.hasSync(`user:${id}`) ')}
if (copy === user || JSON.stringify(copy) !== JSON.stringify(user)) throw new Error('getSync: ' + JSON.stringify(copy))
if (had !== true || cache.hasSync(\`user:\${id}\`)) throw new Error('hasSync/deleteSync')
cache.setSync('a', 1)
if (cache.statsSync().curr_items !== 1) throw new Error('curr_items')
cache.flushSync()
if (cache.getSync('a') !== undefined) throw new Error('flushSync')
try { cache.setSync('big', 'x'.repeat(2 ** 20)); throw new Error('1 MiB stored') } catch (e) { if (e.code !== 'FERROCACHE_TOO_LARGE') throw e }
if (!new Cache({ maxItemSize: '16mb' }).setSync('big', Buffer.alloc(2 ** 20))) throw new Error('maxItemSize')
for (const option of [{ ttl: 60_000 }, { max: 10 }]) {
  try { new Cache(option); throw new Error('accepted ' + JSON.stringify(option)) } catch (e) { if (!(e instanceof TypeError)) throw e }
}
cache.close()
console.log('ok')
`
  assert.ok(code.includes("import { Cache } from 'ferrocache'"))
  assert.is(runNode(`import { Cache } from 'ferrocache'\n${USER}${checks}`).trim(), 'ok')
})

test('Client, fetch and Keyv: the examples run against local servers', () => {
  // Client: the three example addresses become three local servers (the weight stays).
  let n = 0
  const client = block('Client').replace(/'10\.0\.0\.\d:11211(:\d+)?'/g, (_, weight?: string) => `\`127.0.0.1:\${exampleServers[${n++}].port}${weight ?? ''}\``)
  assert.is(n, 3, 'three server addresses in the Client example')
  const clientCode = SERVERS(3) + USER + client +
    "\nif (JSON.parse(buf.toString()).name !== 'ada') throw new Error('client get: ' + buf)\n" + CLOSE_SERVERS + "console.log('ok')\n"
  assert.is(runNode(clientCode).trim(), 'ok')

  // fetch: the one-liner on an embedded cache, with a db stub counting its calls.
  const fetchCode = `import { Cache } from 'ferrocache'
const cache = new Cache()
const id = 7
let calls = 0
const db = { users: { find: async (i) => { calls++; return { id: i, name: 'ada' } } } }
${block('Read-through: fetch')}
const again = await cache.fetch(\`user:\${id}\`, () => db.users.find(id), { ttl: 60_000, encoding: 'json' })
if (user.name !== 'ada' || again.id !== 7 || calls !== 1) throw new Error(JSON.stringify({ user, again, calls }))
cache.close()
console.log('ok')
`
  assert.is(runNode(fetchCode).trim(), 'ok')

  // Keyv and cache-manager: the adapter over a Client to a local server, and over a Cache.
  const keyv = block('Keyv and cache-manager').replace("'127.0.0.1:11211'", '`127.0.0.1:${exampleServers[0].port}`')
  assert.is.not(keyv, block('Keyv and cache-manager'), 'the Keyv example names 127.0.0.1:11211')
  const keyvCode = `${SERVERS(1)}${keyv}
const got = await keyv.get('1')
if (got?.name !== 'ada') throw new Error('keyv get: ' + JSON.stringify(got))
await cache.set('m', 'v', 10_000)
if ((await cache.get('m')) !== 'v') throw new Error('cache-manager get')
await keyv.disconnect()
await cache.disconnect()
${CLOSE_SERVERS}console.log('ok')
`
  assert.is(runNode(keyvCode).trim(), 'ok')
})

test('Server: createServer serves an embedded cache (on a free port instead of 11211)', () => {
  const code = block('Server').replace('port: 11211', 'port: 0')
  assert.is.not(code, block('Server'))
  const out = runNode(`${code}
if (cache.closed) throw new Error('the cache should stay open after server.close()')
if (cache.getSync('k', { encoding: 'utf8' }) !== 'v') throw new Error('setSync')
cache.close()
console.log('ok')
`)
  assert.is(out.trim(), 'ok')
})

test('Persistence: the embedded example writes a snapshot that a new cache loads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-readme-'))
  try {
    const code = block('Persistence').replace(/'\.\/data'/g, JSON.stringify(join(dir, 'data')))
    assert.is.not(code, block('Persistence'))
    const out = runNode(`import { Cache } from 'ferrocache'
${code}
const warm = new Cache({ dataDir: ${JSON.stringify(join(dir, 'data'))} })
if (warm.persistence.stats().find(([k]) => k === 'rdb_last_load_keys_loaded')?.[1] !== '1') throw new Error('not loaded')
if (warm.getSync('k', { encoding: 'utf8' }) !== 'v') throw new Error('k not restored')
warm.close()
console.log('ok')
`.replace('await cache.snapshot()', "cache.setSync('k', 'v')\nawait cache.snapshot()"))
    assert.is(out.trim(), 'ok')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("the ferrocached command lines of Server, Metrics, Persistence and Replication start as written (ports swapped for free ones)", async () => {
  // every port a section's lines name becomes a free one (the same one within the section);
  // a line without a port (memcached's default 11211) gets one of its own
  const PORT = /((?:-p|--metrics-port) |_PORT=|:)(\d{4,5})\b/g
  const commands: Array<{ line: string; cmd: string }> = []
  let metricsPort = 0
  for (const heading of ['Server', 'Metrics and status page', 'Persistence', 'Replication']) {
    const ports = new Map<string, number>()
    for (const line of block(heading, 0, 'sh').split('\n').filter((l) => /^(\S+=\S+ )*npx ferrocached\b/.test(l))) {
      for (const m of line.matchAll(PORT)) if (!ports.has(m[2]!)) ports.set(m[2]!, await freePort())
      let cmd = line.replace(/\s+#.*$/, '').replace(PORT, (_, flag: string, p: string) => `${flag}${ports.get(p)!}`)
      if (!/ -p |FERROCACHE_PORT=/.test(cmd)) cmd += ` -p ${await freePort()}`
      commands.push({ line, cmd: cmd.replace('npx ferrocached', `exec '${process.execPath}' '${BIN}'`) })
    }
    metricsPort ||= ports.get('9150') ?? 0
  }
  assert.ok(commands.length >= 6 && metricsPort > 0, commands.map((c) => c.line).join('\n'))
  const dirs: string[] = []
  const running: Array<{ line: string; child: ChildProcess; stderr: () => string }> = []
  try {
    for (const { line, cmd } of commands) {
      const dir = mkdtempSync(join(tmpdir(), 'ferrocache-readme-cli-')) // a ./data of its own
      dirs.push(dir)
      const child = spawnOwned('/bin/sh', ['-c', cmd], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
      running.push({ line, child, stderr: () => err })
    }
    for (const r of running) {
      assert.ok(await waitFor(() => r.stderr().includes('"msg":"listening"') || r.child.exitCode !== null, 20_000), `${r.line}: no start\n${r.stderr()}`)
      assert.is(r.child.exitCode, null, `${r.line}: exited\n${r.stderr()}`)
    }
    // the Metrics section's curl line
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((res) => res.text())
    assert.match(metrics, /^memcached_commands_total\{/m)
  } finally {
    for (const r of running) await stopChild(r.child)
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
  for (const r of running) assert.is(r.child.exitCode, 0, `${r.line}: exit ${r.child.exitCode}\n${r.stderr()}`)
})

test('docs/persistence.md: the embedded example, Cache.open included, loads what was saved', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'persistence.md'), 'utf8')
  const code = /```ts\n([\s\S]*?)```/.exec(doc)?.[1]
  assert.ok(code?.includes('Cache.open'), 'the first ts block of persistence.md opens a cache')
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-docs-'))
  try {
    const data = JSON.stringify(join(dir, 'data'))
    const out = runNode(`import { Cache } from 'ferrocache'
${code!.replace(/'\.\/data'/g, data)}
if (warm.getSync('k', { encoding: 'utf8' }) !== 'v' || (await warm.loaded)?.items !== 1) throw new Error('not loaded')
warm.close()
console.log('ok')
`)
    assert.is(out.trim(), 'ok')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
