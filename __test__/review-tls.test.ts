// Review of server-side TLS against memcached 1.6.18 -Z: `refresh_certs` (replies compared
// with memcached's, reload for new handshakes only), the ssl_* lines of `stats` and `stats
// settings`, `ssl_verify_mode` 1 and `ssl_min_version`, and `-s` staying plain text.
import { copyFileSync, chmodSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseCommandLine } from '../src/cli/options'
import { createServer, type FerrocacheServer } from '../src/server'
import { readTlsFiles, requiresClientCertificates, type TlsFiles, type TlsSettings } from '../src/server/tls'
import { makeCertificates, type TestCertificates } from './helpers/certs'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { freePort, startAll, startFerrocached, startMemcached, waitFor } from './helpers/servers'

let certs: TestCertificates
const path = (name: string): string => certs.path(name)

setUp(test, () => {
  certs = makeCertificates()
  // memcached -u nobody reads the certificates after dropping root
  chmodSync(certs.dir, 0o755)
  for (const f of ['server.pem', 'server.key', 'ca.pem']) chmodSync(path(f), 0o644)
})

tearDown(test, () => certs?.remove())

/** The server certificate in files of its own, which a test may overwrite. */
function liveFiles(tag: string): TlsFiles {
  const files = { cert: path(`${tag}.pem`), key: path(`${tag}.key`) }
  copyFileSync(path('server.pem'), files.cert)
  copyFileSync(path('server.key'), files.key)
  return files
}

async function withServer(files: TlsFiles & TlsSettings, body: (port: number, server: FerrocacheServer) => Promise<void>): Promise<void> {
  const server = createServer({ port: 0, tls: readTlsFiles(files) })
  const { port } = await server.listen()
  try {
    await body(port, server)
  } finally {
    await server.close(1_000)
  }
}

/** A TLS connection trusting the test CA (a client certificate by name: `client`). */
function open(port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca: certs.read('ca.pem'), ...opts }, () => resolve(s))
    s.setTimeout(10_000, () => s.destroy(new Error('TLS connection timed out')))
    s.once('error', reject)
  })
}

/** Sends `request` on an open TLS socket; the text received until it ends with `until`. */
function ask(s: tls.TLSSocket, request: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (d: Buffer): void => {
      text += d.toString('latin1')
      if (text.endsWith(until)) done()
    }
    const timer = setTimeout(() => done(new Error(`no ${JSON.stringify(until)}: ${JSON.stringify(text)}`)), 10_000)
    // a server that refuses the client's certificate after the handshake (TLS 1.3) ends the
    // connection: that is the answer, not a wait for the timer
    const onError = (err: Error): void => done(err)
    const onClose = (): void => done(new Error(`closed before ${JSON.stringify(until)}: ${JSON.stringify(text)}`))
    const done = (err?: Error): void => {
      clearTimeout(timer)
      s.off('data', onData)
      s.off('error', onError)
      s.off('close', onClose)
      if (err) reject(err)
      else resolve(text)
    }
    s.on('data', onData)
    s.once('error', onError)
    s.once('close', onClose)
    s.write(request)
  })
}

/** Connects, asks, closes: the reply, or the error of a refused handshake. */
async function once(port: number, opts: tls.ConnectionOptions = {}): Promise<string> {
  let s: tls.TLSSocket
  try {
    s = await open(port, opts)
  } catch (err) {
    return `refused: ${(err as Error).message}`
  }
  s.on('error', () => {})
  try {
    return await ask(s, 'version\r\n', '\r\n')
  } catch (err) {
    return `refused: ${(err as Error).message}`
  } finally {
    s.destroy()
  }
}

const stat = (server: FerrocacheServer, name: string, family: '' | 'settings' = ''): string | undefined =>
  server.statsPairs(family).find(([k]) => k === name)?.[1]

test('refresh_certs: new handshakes get the new certificate, open connections keep theirs; a broken file changes nothing', async () => {
  const files = liveFiles('refresh')
  await withServer(files, async (port) => {
    const before = await open(port)
    before.on('error', () => {})
    try {
      assert.is(before.getPeerCertificate().subject.CN, 'localhost')
      // the CA's client certificate (also for 127.0.0.1) becomes the server's
      copyFileSync(path('client.pem'), files.cert)
      copyFileSync(path('client.key'), files.key)
      assert.is(await ask(before, 'refresh_certs\r\nrefresh_certs noreply\r\nversion\r\n', 'VERSION 1.6.18\r\n'), 'OK\r\nVERSION 1.6.18\r\n')
      const after = await open(port)
      after.on('error', () => {})
      assert.is(after.getPeerCertificate().subject.CN, 'client', 'a new handshake sees the reloaded certificate')
      after.destroy()
      assert.is(before.getPeerCertificate().subject.CN, 'localhost')
      assert.is(await ask(before, 'version\r\n', '\r\n'), 'VERSION 1.6.18\r\n', 'the open connection goes on')
      // a broken file: memcached's error, even with noreply, and the last good certificate stays
      writeFileSync(files.cert, 'garbage\n')
      const broken = `Error loading the certificate chain: ${files.cert} : error:0480006C:PEM routines::no start line\r\n`
      assert.is(await ask(before, 'refresh_certs noreply\r\n', '\r\n'), broken)
      const still = await open(port)
      still.on('error', () => {})
      assert.is(still.getPeerCertificate().subject.CN, 'client')
      assert.is(await ask(still, 'version\r\n', '\r\n'), 'VERSION 1.6.18\r\n')
      still.destroy()
    } finally {
      before.destroy()
    }
  })
})

test('refresh_certs answers as memcached 1.6.18 -Z does (notls listener), with a broken key, and without -Z', async () => {
  const files = liveFiles('diff')
  chmodSync(files.cert, 0o644)
  chmodSync(files.key, 0o644)
  // memcached adds -l lists to the helper's `-l 127.0.0.1` (its TLS port): the notls one is mp
  const [mp, fp] = [await freePort(), await freePort()]
  const tlsArgs = (port: number): string[] => ['-Z', '-o', `ssl_chain_cert=${files.cert},ssl_key=${files.key}`, '-l', `notls:127.0.0.1:${port}`]
  const asNobody = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const servers = await startAll([
    () => startMemcached([...asNobody, ...tlsArgs(mp)]),
    () => startFerrocached(tlsArgs(fp), {}, fp),
    () => startMemcached(),
    () => startFerrocached([]),
  ])
  try {
    const exchange = async (port: number, request: string): Promise<string> => {
      const c = await RawConn.open(port)
      try {
        c.send(request)
        return (await c.until('VERSION 1.6.18\r\n')).toString()
      } finally {
        c.close()
      }
    }
    const both = async (ports: [number, number], request: string): Promise<void> => {
      const [theirs, ours] = [await exchange(ports[0], request), await exchange(ports[1], request)]
      assert.is(ours, theirs, JSON.stringify(request))
    }
    const session = 'refresh_certs\r\nrefresh_certs noreply\r\nrefresh_certs a b\r\nREFRESH_CERTS\r\nversion\r\n'
    await both([mp, fp], session)
    writeFileSync(files.key, 'junk')
    await both([mp, fp], 'refresh_certs\r\nrefresh_certs noreply\r\nversion\r\n')
    copyFileSync(path('server.key'), files.key)
    await both([mp, fp], 'refresh_certs\r\nversion\r\n')
    await both([servers[2]!.port, servers[3]!.port], session)
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test('stats: ssl_handshake_errors counts a plain-text client, time_since_server_cert_refresh; stats settings: the files, memcached\'s verify flags', async () => {
  const files = { ...liveFiles('stats'), ca: path('ca.pem') }
  await withServer(files, async (port, server) => {
    assert.is(stat(server, 'ssl_handshake_errors'), '0')
    const plain = await RawConn.open(port)
    plain.send('version\r\n')
    assert.ok(await plain.waitClosed(5_000), 'a plain-text client is dropped')
    assert.is(plain.take().toString(), '')
    assert.ok(await waitFor(() => stat(server, 'ssl_handshake_errors') === '1', 2_000), `ssl_handshake_errors ${stat(server, 'ssl_handshake_errors')}`)
    assert.ok(Number(stat(server, 'time_since_server_cert_refresh')) <= 2)
    assert.is(stat(server, 'ssl_chain_cert', 'settings'), files.cert)
    assert.is(stat(server, 'ssl_key', 'settings'), files.key)
    assert.is(stat(server, 'ssl_ca_cert', 'settings'), files.ca)
    // memcached prints OpenSSL's flags: require = PEER|FAIL_IF_NO_PEER_CERT
    assert.is(stat(server, 'ssl_verify_mode', 'settings'), '3')
  })
  const plain = createServer({ port: 0 })
  try {
    assert.is(stat(plain, 'ssl_handshake_errors'), undefined, 'no ssl_* lines without TLS, as memcached')
  } finally {
    await plain.close(0)
  }
})

test('ssl_verify_mode 1 asks for a certificate: none is fine, a foreign one is refused; 2 without a CA does not start', async () => {
  await withServer({ ...liveFiles('request'), ca: path('ca.pem'), verifyMode: 1 }, async (port) => {
    assert.is(await once(port), 'VERSION 1.6.18\r\n')
    assert.is(await once(port, { cert: certs.read('client.pem'), key: certs.read('client.key') }), 'VERSION 1.6.18\r\n')
    assert.match(await once(port, { cert: certs.read('other-ca.pem'), key: certs.read('other-ca.key') }), /^refused/)
  })
  assert.throws(() => createServer({ port: 0, tls: { ...readTlsFiles(liveFiles('nocA')), verifyMode: 2 } }), /needs the CA file/)
  // a CA file without a certificate: memcached does not start either
  writeFileSync(path('junk-ca.pem'), 'junk\n')
  assert.throws(() => readTlsFiles({ ...liveFiles('junkca'), ca: path('junk-ca.pem') }), /junk-ca\.pem holds no certificate/)
  const run = (argv: string[]): unknown => {
    const c = parseCommandLine(argv)
    return c.kind === 'run' ? c.settings.tls : c.kind
  }
  const o = (list: string): string[] => ['-Z', '-o', `ssl_chain_cert=c,ssl_key=k,${list}`]
  assert.equal(run(o('ssl_ca_cert=a,ssl_verify_mode=1,ssl_min_version=3,ssl_ciphers=HIGH')), { cert: 'c', key: 'k', ca: 'a', verifyMode: 1, minVersion: 'TLSv1.3', ciphers: 'HIGH' })
  assert.throws(() => run(o('ssl_verify_mode=2')), /needs the CA file/)
  // memcached: "could not parse argument to ssl_min_version" / "Invalid ssl_min_version"
  assert.throws(() => run(o('ssl_min_version=tlsv1.3')), /could not parse argument/)
  assert.throws(() => run(o('ssl_min_version=4')), /Invalid ssl_min_version/)
})

test('the exposure warning counts client certificates as a guard only when required (mode 2 or 3)', () => {
  const pems = { cert: 'c', key: 'k' }
  assert.is(requiresClientCertificates(undefined), false)
  assert.is(requiresClientCertificates(pems), false)
  assert.is(requiresClientCertificates({ ...pems, ca: 'a' }), true)
  // ssl_ca_cert with ssl_verify_mode 0 or 1: anyone without a certificate is served
  assert.is(requiresClientCertificates({ ...pems, ca: 'a', verifyMode: 0 }), false)
  assert.is(requiresClientCertificates({ ...pems, ca: 'a', verifyMode: 1 }), false)
  assert.is(requiresClientCertificates({ ...pems, ca: 'a', verifyMode: 3 }), true)
})

test('ssl_min_version 3: a TLS 1.2 client is refused, TLS 1.3 served', async () => {
  await withServer({ ...liveFiles('min13'), minVersion: 'TLSv1.3' }, async (port, server) => {
    assert.match(await once(port, { maxVersion: 'TLSv1.2' }), /^refused/)
    assert.is(await once(port, { minVersion: 'TLSv1.3' }), 'VERSION 1.6.18\r\n')
    assert.is(stat(server, 'ssl_min_version', 'settings'), 'tlsv1.3')
  })
})

test('a handshake that stalls (silent, or half a ClientHello) is dropped at the handshake timeout and counted', async () => {
  await withServer({ ...liveFiles('slow'), handshakeTimeoutMs: 300 }, async (port, server) => {
    const [silent, partial] = [await RawConn.open(port), await RawConn.open(port)]
    try {
      partial.send(Buffer.from('16030102000100', 'hex'))
      assert.ok(await silent.waitClosed(5_000), 'the silent client is dropped')
      assert.ok(await partial.waitClosed(5_000), 'the half ClientHello is dropped')
      assert.ok(await waitFor(() => stat(server, 'ssl_handshake_errors') === '2', 2_000), `ssl_handshake_errors ${stat(server, 'ssl_handshake_errors')}`)
      assert.is(await once(port), 'VERSION 1.6.18\r\n')
    } finally {
      silent.close()
      partial.close()
    }
  })
})

test('-s with -Z: the Unix socket is plain text, as memcached\'s', async () => {
  const files = liveFiles('unix')
  const socketPath = join(certs.dir, 'ferrocache.sock')
  const server = createServer({ unixSocket: { path: socketPath, mode: 0o700 }, tls: readTlsFiles(files) })
  await server.listen()
  try {
    const reply = await new Promise<string>((resolve) => {
      let text = ''
      const s = net.connect(socketPath, () => s.write('version\r\n'))
      const timer = setTimeout(() => s.destroy(), 5_000)
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1')
        if (text.endsWith('\r\n')) s.destroy()
      })
      s.on('error', () => {})
      s.on('close', () => {
        clearTimeout(timer)
        resolve(text)
      })
    })
    assert.is(reply, 'VERSION 1.6.18\r\n')
  } finally {
    await server.close(1_000)
  }
})

test.run()
