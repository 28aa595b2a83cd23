// Follow-up review of this session's fresh fixes (fetch timeout/signal, replication login
// gating, process title masking, private data files, the deleted-log refusal): what they
// missed or broke. Needs `npm run build` for the server tests.
import { getEventListeners } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, createServer } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { parseCommandLine } from '../src/cli/options'
import { sameTarget } from '../src/replication/options'
import { RawConn } from './helpers/raw'
import { waitFor } from './helpers/servers'

setUp(test, async () => {})

tearDown(test, async () => {})

/** A promise with its resolve, to hold loaders open. */
function held<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((res) => (resolve = res))
  return { promise, resolve }
}

test('fetch: concurrent fetches sharing one AbortSignal add one abort listener (no MaxListenersExceeded), none left after', async () => {
  const cache = new Cache<'utf8'>({ encoding: 'utf8' })
  const warnings: string[] = []
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`)
  }
  process.on('warning', onWarning)
  try {
    // a request's signal bounding its parallel reads: 50 misses at once
    const request = new AbortController()
    const loads = held<string>()
    const calls = Array.from({ length: 50 }, (_, i) => cache.fetch(`k${i}`, () => loads.promise, { signal: request.signal, timeout: 10_000 }))
    const most = getEventListeners(request.signal, 'abort').length
    loads.resolve('v')
    assert.equal(await Promise.all(calls), Array(50).fill('v'))
    assert.is(getEventListeners(request.signal, 'abort').length, 0, 'a listener left on the signal after the calls settled')
    assert.ok(most <= 1, `${most} abort listeners on one signal`)
    // the one listener still reaches every call when the signal aborts
    const stopping = new AbortController()
    const never = held<string>()
    const waits = Array.from({ length: 30 }, (_, i) => cache.fetch(`n${i}`, () => never.promise, { signal: stopping.signal }).then(
      () => 'loaded',
      (e: Error) => e.message,
    ))
    stopping.abort(new Error('request gone'))
    assert.equal(await Promise.all(waits), Array(30).fill('request gone'))
    assert.is(getEventListeners(stopping.signal, 'abort').length, 0)
    await new Promise((r) => setImmediate(r))
    assert.equal(warnings.filter((w) => w.includes('MaxListeners')), [])
  } finally {
    process.off('warning', onWarning)
    cache.close()
  }
})

const PASSWORD = 'link-pw-53c1'

/** Poses as a primary that asks every link for a login; keeps what each link sent. */
async function fakePrimary(): Promise<{ port: number; links: string[]; close(): void }> {
  const links: string[] = []
  const server = net.createServer((s) => {
    const i = links.push('') - 1
    s.on('error', () => {})
    s.on('data', (d: Buffer) => {
      const first = !links[i]!.includes('\n')
      links[i] += d.toString('latin1')
      if (first && links[i]!.includes('\n')) s.write('CLIENT_ERROR unauthenticated\r\n')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const sockets = new Set<net.Socket>()
  server.on('connection', (s) => sockets.add(s))
  return {
    port: (server.address() as net.AddressInfo).port,
    links,
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

test('replicaof from anyone: the configured primary written in another case still gets --replica-auth (a host name is case-insensitive)', async () => {
  const fake = await fakePrimary()
  const replica = createServer({
    port: 0,
    host: '127.0.0.1',
    replication: { replicaOf: `LocalHost:${fake.port}`, auth: { username: 'repl', password: PASSWORD } },
  })
  const { port } = await replica.listen()
  try {
    assert.ok(await waitFor(() => fake.links[0]?.includes(PASSWORD) === true), 'the link logs in at start')
    const c = await RawConn.open(port)
    try {
      c.send(`replicaof localhost ${fake.port}\r\n`)
      assert.is(await c.until('\r\n'), 'OK\r\n')
    } finally {
      c.close()
    }
    // the re-pointed link's login, or its next try after going without one
    await waitFor(() => fake.links.length > 2 || (fake.links[1]?.includes(PASSWORD) ?? false), 3_000)
    assert.ok(fake.links[1]?.includes(PASSWORD), `no login to the configured primary: ${JSON.stringify(fake.links[1])}`)
  } finally {
    await replica.close()
    fake.close()
  }
  // an IPv6 literal written out is the same address; a name and an address stay apart
  assert.ok(sameTarget({ host: '0:0:0:0:0:0:0:1', port: 1 }, { host: '::1', port: 1 }))
  assert.ok(sameTarget({ host: '2001:DB8::1', port: 1 }, { host: '2001:db8:0::1', port: 1 }))
  assert.not.ok(sameTarget({ host: 'localhost', port: 1 }, { host: '127.0.0.1', port: 1 }))
  assert.not.ok(sameTarget({ host: '::1', port: 1 }, { host: '::1', port: 2 }))
})

test('--replica-auth (and replication.auth) with a space is refused at start: the link\'s text login splits at spaces, so no primary could accept it', async () => {
  // why: a text login of a user file's 'repl:two words' fails, as on memcached 1.6.18
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-followup3-'))
  const users = join(dir, 'users')
  writeFileSync(users, 'repl:two words\n', { mode: 0o600 })
  const primary = createServer({ port: 0, host: '127.0.0.1', authFile: users })
  try {
    const c = await RawConn.open((await primary.listen()).port)
    try {
      c.send('set x 0 0 14\r\nrepl two words\r\n')
      assert.is(await c.until('\r\n'), 'CLIENT_ERROR authentication failure\r\n')
    } finally {
      c.close()
    }
  } finally {
    await primary.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const link = ['--replica-of', '127.0.0.1:11211']
  assert.throws(() => parseCommandLine([...link, '--replica-auth', 'repl:two words'], {}), /--replica-auth: the password cannot hold a space/)
  assert.throws(() => parseCommandLine(link, { FERROCACHE_REPLICA_AUTH: 'repl:two words' }), /FERROCACHE_REPLICA_AUTH: the password cannot hold a space/)
  assert.throws(() => parseCommandLine([...link, '--replica-auth', 'my user:pw'], {}), /user name/)
  assert.throws(
    () => createServer({ replication: { replicaOf: '127.0.0.1:11211', auth: { username: 'repl', password: 'two words' } } }),
    (e: unknown) => e instanceof TypeError && /replication\.auth: the password cannot hold a space/.test(e.message),
  )
  // a colon in the password is fine (the user ends at the first one)
  const ok = parseCommandLine([...link, '--replica-auth', 'repl:pw:with:colons'], {})
  assert.is(ok.kind, 'run')
})

test.run()
