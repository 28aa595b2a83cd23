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

/** Sends `request` on a new TLS connection; the first reply line. */
function askLine(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const s = tls.connect({ port, host: '127.0.0.1', ca: certs.read('ca.pem') }, () => s.write(request))
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

test.run()
