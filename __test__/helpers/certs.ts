// Test certificates made with openssl in a temporary folder: a CA, a server certificate
// for 127.0.0.1 and localhost, a client certificate from the same CA, and a second CA
// that signed nothing here (the wrong one to trust).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const OPENSSL = '/usr/bin/openssl'

export interface TestCertificates {
  dir: string
  /** A file's path: `ca.pem`, `other-ca.pem`, `server.pem`/`.key`, `client.pem`/`.key`. */
  path(name: string): string
  /** A file's bytes. */
  read(name: string): Buffer
  remove(): void
}

export function makeCertificates(): TestCertificates {
  if (!existsSync(OPENSSL)) throw new Error(`${OPENSSL} is missing: CI installs openssl in .ci/run`)
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-certs-'))
  const run = (...args: string[]): void => {
    execFileSync(OPENSSL, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  }
  const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  for (const ca of ['ca', 'other-ca']) {
    run('req', '-x509', ...p256, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=ferrocache ${ca}`)
  }
  writeFileSync(join(dir, 'names.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  for (const [name, cn] of [['server', 'localhost'], ['client', 'client']]) {
    run('req', ...p256, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    run('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'names.ext')
  }
  return {
    dir,
    path: (name) => join(dir, name),
    read: (name) => readFileSync(join(dir, name)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
