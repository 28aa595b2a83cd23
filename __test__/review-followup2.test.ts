// Second look at this session's TLS, admin and client fixes: what the review found.
import { execFileSync } from 'node:child_process'
import { copyFileSync } from 'node:fs'
import tls from 'node:tls'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer } from '../src/server'
import { readTlsFiles } from '../src/server/tls'
import { makeCertificates, type TestCertificates } from './helpers/certs'
import { setUp, tearDown } from './helpers/guard'

let certs: TestCertificates
const path = (name: string): string => certs.path(name)

setUp(test, () => {
  certs = makeCertificates()
  // a key of another type than the EC test certificates
  execFileSync('/usr/bin/openssl', ['genrsa', '-out', path('rsa.key'), '2048'], { stdio: 'ignore' })
  execFileSync('/usr/bin/openssl', ['x509', '-in', path('ca.pem'), '-outform', 'DER', '-out', path('ca.der')], { stdio: 'ignore' })
})

tearDown(test, () => certs?.remove())

/** A TLS handshake with the server: 'ok', or the client's error. */
function handshake(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', ca: certs.read('ca.pem') }, () => {
      s.destroy()
      resolve('ok')
    })
    s.setTimeout(5_000, () => s.destroy(new Error('handshake timed out')))
    s.once('error', (err) => resolve(err.message))
  })
}

/** Sends `request` on a new TLS connection (with the client certificate); the first reply
 * line, or 'closed' (a refused client certificate closes the connection after TLS 1.3's
 * handshake). */
function askLine(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const client = { cert: certs.read('client.pem'), key: certs.read('client.key') }
    const s = tls.connect({ port, host: '127.0.0.1', ca: certs.read('ca.pem'), ...client }, () => s.write(request))
    s.once('close', () => resolve('closed'))
    s.setTimeout(5_000, () => s.destroy(new Error(`no reply to ${JSON.stringify(request)}: ${JSON.stringify(text)}`)))
    s.once('error', reject)
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      const end = text.indexOf('\r\n')
      if (end < 0) return
      s.destroy()
      resolve(text.slice(0, end))
    })
  })
}

// OpenSSL checks a certificate against a key only when the key is of the certificate's type:
// an RSA key beside an EC certificate was taken (OK), and every new handshake then failed.
test('refresh_certs and the start refuse a key of another type than the certificate', async () => {
  const files = { cert: path('live.pem'), key: path('live.key') }
  copyFileSync(path('server.pem'), files.cert)
  copyFileSync(path('server.key'), files.key)
  const server = createServer({ port: 0, tls: readTlsFiles(files) })
  const { port } = await server.listen()
  try {
    copyFileSync(path('rsa.key'), files.key)
    assert.match(await askLine(port, 'refresh_certs\r\n'), /^Error loading the key: .*live\.key : .*does not match/)
    assert.is(await handshake(port), 'ok', 'the certificates in use stay')
    copyFileSync(path('server.key'), files.key)
    assert.is(await askLine(port, 'refresh_certs\r\n'), 'OK')
    assert.is(await handshake(port), 'ok')
  } finally {
    await server.close(1_000)
  }
  assert.throws(() => createServer({ port: 0, tls: readTlsFiles({ cert: path('server.pem'), key: path('rsa.key') }) }), /tls: .*does not match/)
})

// node's `ca` takes PEM certificates only and skips the rest without a word; the check
// against a CA file without one parsed it with X509Certificate, which reads DER too: a DER
// CA file started the server (and passed refresh_certs), which then refused every client.
test('a DER CA file is refused at the start and by refresh_certs (node would skip it)', async () => {
  assert.throws(() => readTlsFiles({ cert: path('server.pem'), key: path('server.key'), ca: path('ca.der') }), /CA file .*ca\.der holds no certificate/)
  const files = { cert: path('server.pem'), key: path('server.key'), ca: path('live-ca.pem') }
  copyFileSync(path('ca.pem'), files.ca)
  const server = createServer({ port: 0, tls: readTlsFiles(files) })
  const { port } = await server.listen()
  try {
    assert.match(await askLine(port, 'version\r\n'), /^VERSION /)
    copyFileSync(path('ca.der'), files.ca)
    assert.match(await askLine(port, 'refresh_certs\r\n'), /^Error loading the CA certificate: .*live-ca\.pem : /)
    assert.match(await askLine(port, 'version\r\n'), /^VERSION /, 'the CA in use stays')
  } finally {
    await server.close(1_000)
  }
})

test.run()
