// TLS: certificates made with openssl at test time (a CA, a server certificate for
// 127.0.0.1, a client certificate from the CA and one from nowhere); clients are node's
// tls. Without --tls-ca any TLS client is served; with it, only clients showing a
// certificate the CA signed.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type FerrocacheServer } from '../src/server'
import { setUp, tearDown } from './helpers/guard'
import { rssKiB, runCli, sleep, startAll, startFerrocached, within, type Running } from './helpers/servers'

const OPENSSL = '/usr/bin/openssl'
let dir: string
const pem = (name: string): Buffer => readFileSync(join(dir, name))

function openssl(args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A P-256 key and a certificate for `cn` signed by the CA (or self-signed: `ca` false). */
function issue(name: string, cn: string, ca: boolean): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  writeFileSync(join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  const signer = ca ? ['-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'] : ['-signkey', `${name}.key`]
  openssl(['x509', '-req', '-in', `${name}.csr`, ...signer, '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`])
}

setUp(test, () => {
  if (!existsSync(OPENSSL)) throw new Error(`${OPENSSL} is missing: CI installs openssl in .ci/run`)
  dir = mkdtempSync(join(tmpdir(), 'ferrocache-tls-'))
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ferrocache test CA'])
  issue('server', 'localhost', true)
  issue('client', 'client', true)
  issue('stranger', 'stranger', false)
})

tearDown(test, () => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** Connects with TLS (trusting the test CA), sends `request`, collects until `until` or close. */
function tlsExchange(
  port: number,
  request: string | Buffer,
  until: string,
  client: { cert?: Buffer; key?: Buffer } = {},
): Promise<{ reply: string; error?: string }> {
  return new Promise((resolve) => {
    let reply = ''
    let error: string | undefined
    const s = tls.connect({ port, host: '127.0.0.1', ca: pem('ca.pem'), ...client }, () => s.write(request))
    const timer = setTimeout(() => s.destroy(), 15_000)
    s.on('data', (d: Buffer) => {
      reply += d.toString('latin1')
      if (reply.endsWith(until)) s.end()
    })
    s.on('error', (e) => (error = e.message))
    s.on('close', () => {
      clearTimeout(timer)
      resolve(error === undefined ? { reply } : { reply, error })
    })
  })
}

async function withServer(options: Parameters<typeof createServer>[0], body: (port: number, server: FerrocacheServer) => Promise<void>): Promise<void> {
  const server = createServer({ port: 0, ...options })
  const { port } = await server.listen()
  try {
    await body(port, server)
  } finally {
    await server.close(1_000)
  }
}

test('TLS: set/get, a 1 MB value, stats settings say ssl_enabled', async () => {
  await withServer({ tls: { cert: pem('server.pem'), key: pem('server.key') } }, async (port) => {
    const r = await tlsExchange(port, 'set k 0 0 5\r\nhello\r\nget k\r\n', 'END\r\n')
    assert.is(r.reply, 'STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n')
    const big = 'v'.repeat(1_000_000)
    const b = await tlsExchange(port, `set big 0 0 ${big.length}\r\n${big}\r\nget big big\r\n`, 'END\r\n')
    assert.is(b.reply, `STORED\r\nVALUE big 0 ${big.length}\r\n${big}\r\nVALUE big 0 ${big.length}\r\n${big}\r\nEND\r\n`)
    const st = await tlsExchange(port, 'stats settings\r\n', 'END\r\n')
    assert.match(st.reply, /STAT ssl_enabled yes\r\n/)
    assert.match(st.reply, /STAT ssl_verify_mode 0\r\n/)
  })
})

test('TLS: a plain-TCP client gets no reply and is dropped', async () => {
  await withServer({ tls: { cert: pem('server.pem'), key: pem('server.key') } }, async (port) => {
    const got = await new Promise<string>((resolve) => {
      let text = ''
      const s = net.connect(port, '127.0.0.1', () => s.write('version\r\n'))
      s.on('data', (d: Buffer) => (text += d.toString('latin1')))
      s.on('error', () => {})
      const timer = setTimeout(() => s.destroy(), 5_000)
      s.on('close', () => {
        clearTimeout(timer)
        resolve(text)
      })
    })
    assert.not.match(got, /VERSION/)
  })
})

test('--tls-ca: clients need a certificate the CA signed', async () => {
  const options = { tls: { cert: pem('server.pem'), key: pem('server.key'), ca: pem('ca.pem') } }
  await withServer(options, async (port) => {
    const none = await tlsExchange(port, 'version\r\n', '\r\n')
    assert.not.match(none.reply, /VERSION/)
    assert.ok(none.error !== undefined || none.reply === '', 'refused without a certificate')
    const stranger = await tlsExchange(port, 'version\r\n', '\r\n', { cert: pem('stranger.pem'), key: pem('stranger.key') })
    assert.not.match(stranger.reply, /VERSION/)
    const ok = await tlsExchange(port, 'version\r\nstats settings\r\n', 'END\r\n', { cert: pem('client.pem'), key: pem('client.key') })
    assert.match(ok.reply, /^VERSION 1\.6\.18\r\n/)
    assert.match(ok.reply, /STAT ssl_verify_mode 3\r\n/)
  })
})

test('TLS with logins: the login and then commands, over TLS', async () => {
  writeFileSync(join(dir, 'users'), 'alice:s3cret\n')
  await withServer({ tls: { cert: pem('server.pem'), key: pem('server.key') }, authFile: join(dir, 'users') }, async (port) => {
    const r = await tlsExchange(port, 'get a\r\nset a 0 0 12\r\nalice s3cret\r\nset a 0 0 1\r\n1\r\nget a\r\n', 'END\r\n')
    assert.is(r.reply, 'CLIENT_ERROR unauthenticated\r\nSTORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n')
  })
})

test('TLS handshakes count against the connection limit: a flood of silent TCP clients is cut at -c', async () => {
  await withServer({ connLimit: 20, tls: { cert: pem('server.pem'), key: pem('server.key') } }, async (port, server) => {
    const raws = await Promise.all(
      Array.from({ length: 60 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s))
        s.on('error', () => {})
        s.on('close', () => resolve(s)) // dropped before its connect event
      })),
    )
    try {
      const open = async (): Promise<number> => {
        await new Promise((r) => setTimeout(r, 300))
        return raws.filter((s) => !s.destroyed && s.readyState === 'open').length
      }
      let held = await open()
      for (let i = 0; i < 20 && held > 20; i++) held = await open()
      assert.ok(held <= 20, `${held} silent connections held with -c 20`)
      assert.ok(server.statsPairs().some(([k, v]) => k === 'rejected_connections' && Number(v) >= 40), 'counted as rejected')
    } finally {
      for (const s of raws) s.destroy()
    }
    await new Promise((r) => setTimeout(r, 200))
    const r = await tlsExchange(port, 'version\r\n', '\r\n')
    assert.is(r.reply, 'VERSION 1.6.18\r\n', 'served again once they are gone')
  })
})

test('a TLS client that never reads its replies does not grow the server', async () => {
  const server = await startFerrocached(['--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key')])
  try {
    const big = 'b'.repeat(1_000_000)
    assert.is((await tlsExchange(server.port, `set big 0 0 ${big.length}\r\n${big}\r\n`, 'STORED\r\n')).reply, 'STORED\r\n')
    const before = rssKiB(server.child.pid!)
    const hog = tls.connect({ port: server.port, host: '127.0.0.1', ca: pem('ca.pem') })
    // the server may drop this client that never reads: a reset then says nothing about the test
    hog.on('error', () => {})
    try {
      const handshake = new Promise<void>((resolve, reject) => {
        hog.once('secureConnect', resolve)
        hog.once('close', () => reject(new Error('the TLS connection closed before its handshake')))
      })
      await within(handshake, 15_000, 'the TLS handshake')
      hog.pause() // never read: 2000 gets of 1 MB = 2 GB of replies
      const request = Buffer.from('get big\r\n'.repeat(100))
      for (let i = 0; i < 20; i++) hog.write(request)
      await sleep(1_500)
      const grown = rssKiB(server.child.pid!) - before
      assert.ok(grown < 96 * 1024, `RSS grew by ${grown >> 10} MiB for a TLS client that does not read`)
      assert.is((await tlsExchange(server.port, 'version\r\n', '\r\n')).reply, 'VERSION 1.6.18\r\n', 'others are served')
    } finally {
      hog.destroy()
    }
  } finally {
    await server.stop()
  }
})

test('ferrocached -Z -o ssl_chain_cert=,ssl_key= serves TLS; -Z without files is a usage error', async () => {
  const server = await startFerrocached(['-Z', '-o', `ssl_chain_cert=${join(dir, 'server.pem')},ssl_key=${join(dir, 'server.key')}`])
  try {
    const r = await tlsExchange(server.port, 'version\r\n', '\r\n')
    assert.is(r.reply, 'VERSION 1.6.18\r\n')
  } finally {
    await server.stop()
  }
  // memcached 1.6.18's -Z without them fails to load its (null) files: exit 64
  const bad = await runCli(['-Z'])
  assert.is(bad.code, 64)
  assert.match(bad.stderr, /--tls-cert/)
  const missing = await runCli(['--tls-cert', join(dir, 'nope.pem'), '--tls-key', join(dir, 'server.key'), '-p', '0'])
  assert.is(missing.code, 2)
  assert.match(missing.stderr, /nope\.pem/)
  // a key that does not belong to the certificate
  const mismatch = await runCli(['--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'client.key'), '-p', '0'])
  assert.is(mismatch.code, 2)
  assert.match(mismatch.stderr, /tls: .*mismatch/i)
})

test('a replica follows a TLS primary that requires client certificates (--replica-tls-*); without one its link stays down', async () => {
  const file = (name: string): string => join(dir, name)
  const primary = await startFerrocached(['--tls-cert', file('server.pem'), '--tls-key', file('server.key'), '--tls-ca', file('ca.pem')])
  const args = ['--replica-of', `127.0.0.1:${primary.port}`, '--replica-tls-ca', file('ca.pem')]
  const [replica, refused] = await startAll([
    () => startFerrocached([...args, '--replica-tls-cert', file('client.pem'), '--replica-tls-key', file('client.key')]),
    () => startFerrocached(args),
  ]).catch(async (err: unknown) => {
    await primary.stop()
    throw err
  }) as [Running, Running]
  const client = { cert: pem('client.pem'), key: pem('client.key') }
  try {
    const set = await tlsExchange(primary.port, 'set over-tls 7 0 6\r\nsecret\r\n', 'STORED\r\n', client)
    assert.is(set.reply, 'STORED\r\n')
    const deadline = Date.now() + 10_000
    let got = ''
    while (Date.now() < deadline && !(got = await plainExchange(replica.port, 'get over-tls\r\n', 'END\r\n')).includes('VALUE')) await sleep(50)
    assert.is(got, 'VALUE over-tls 7 6\r\nsecret\r\nEND\r\n')
    const status = await plainExchange(refused.port, 'stats\r\n', 'END\r\n')
    assert.match(status, /STAT master_link_status down\r\n/)
    assert.is(await plainExchange(refused.port, 'get over-tls\r\n', 'END\r\n'), 'END\r\n')
  } finally {
    await Promise.all([refused.stop(), replica.stop(), primary.stop()])
  }
  const half = await runCli(['--replica-of', '127.0.0.1:1', '--replica-tls-cert', file('client.pem'), '-p', '0'])
  assert.is(half.code, 2)
  assert.match(half.stderr, /--replica-tls-key/)
})

/** A plain TCP exchange: sends `request`, collects until `until`. */
function plainExchange(port: number, request: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = ''
    const s = net.connect({ port, host: '127.0.0.1' }, () => s.write(request))
    const timer = setTimeout(() => s.destroy(new Error(`no ${JSON.stringify(until)} from ${port}: ${JSON.stringify(reply)}`)), 15_000)
    s.on('data', (d: Buffer) => {
      reply += d.toString('latin1')
      if (reply.endsWith(until)) s.end()
    })
    s.on('error', reject)
    s.on('close', () => {
      clearTimeout(timer)
      resolve(reply)
    })
  })
}

test.run()
