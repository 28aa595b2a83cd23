// TLS for the memcached port (--tls-cert/--tls-key/--tls-ca, memcached's -Z): node's `tls`
// server in front of the same Connection, which then reads with 'data' events and writes
// with socket.write (its direct-to-descriptor path only suits plain TCP sockets).
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as tls from 'node:tls'

/** memcached's `-o ssl_verify_mode`: 0 none, 1 request (checked if sent), 2 require, 3 once (= 2 here). */
export type TlsVerifyMode = 0 | 1 | 2 | 3

/** The settings beside the PEM files (memcached's `-o ssl_*`). */
export interface TlsSettings {
  /** Default: 2 (require) with `ca`, else 0. 1 to 3 need `ca`. */
  verifyMode?: TlsVerifyMode
  /** memcached's `ssl_min_version`; default TLS 1.2. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  /** memcached's `ssl_ciphers`: an OpenSSL cipher list (TLS 1.2 ciphers); default node's. */
  ciphers?: string
  /** A handshake not done after this long is dropped; default HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number
  /**
   * memcached's `ssl_session_cache`: `stats` counts the new sessions (`ssl_new_sessions`:
   * each TLS 1.3 session ticket issued, as OpenSSL reports them). Sessions resume with TLS
   * tickets either way; there is no server-side session cache.
   */
  sessionCache?: boolean
}

/** PEM contents (not paths), as node's `tls.createServer` takes them. */
export interface TlsOptions extends TlsSettings {
  /** The server's certificate chain. */
  cert: string | Buffer
  /** Its private key. */
  key: string | Buffer
  /** CA certificates: with one, clients must present a certificate it signed. */
  ca?: string | Buffer
  /** Where they were read from: `refresh_certs` reads these again (without: it fails). */
  files?: TlsFiles
}

/** Paths of the PEM files, as the command line names them. */
export interface TlsFiles extends TlsSettings {
  /** The certificate chain's PEM file (memcached's `ssl_chain_cert`). */
  cert: string
  /** The private key's PEM file (`ssl_key`). */
  key: string
  /** The CA file client certificates are checked against (`ssl_ca_cert`). */
  ca?: string
}

/** A handshake not done after this long is dropped (slow or idle TLS clients). */
export const HANDSHAKE_TIMEOUT_MS = 10_000

/** Reads the PEM files; the TypeError names the one that cannot be read. */
export function readTlsFiles(files: TlsFiles): TlsOptions {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (err) {
      throw new TypeError(`cannot read the TLS ${what}: ${(err as Error).message}`)
    }
  }
  const { cert, key, ca, ...settings } = files
  const out: TlsOptions = { ...settings, cert: read('certificate', cert), key: read('key', key), files }
  if (ca !== undefined) {
    out.ca = read('CA file', ca)
    // node skips what is not a certificate in a CA file, so a wrong file would refuse every
    // client certificate; memcached stops at start (`Error loading the CA certificate`)
    try {
      checkCaFile(out.ca)
    } catch (err) {
      throw new TypeError(`the TLS CA file ${ca} holds no certificate: ${(err as Error).message}`)
    }
  }
  return out
}

/** The verification mode in force: memcached's number (`ca` alone means 2, require). */
export function verifyModeOf(opts: TlsOptions): TlsVerifyMode {
  return opts.verifyMode ?? (opts.ca === undefined ? 0 : 2)
}

/** Whether only clients with a certificate the CA signed get through (modes 2 and 3). */
export function requiresClientCertificates(opts: TlsOptions | undefined): boolean {
  return opts !== undefined && verifyModeOf(opts) >= 2
}

/** What node's secure context takes (for createServer and for setSecureContext alike). */
function contextOptions(opts: TlsOptions): tls.SecureContextOptions {
  const useCa = opts.ca !== undefined && verifyModeOf(opts) > 0
  return {
    cert: opts.cert,
    key: opts.key,
    ...(useCa ? { ca: opts.ca } : {}),
    minVersion: opts.minVersion ?? 'TLSv1.2',
    ...(opts.ciphers === undefined ? {} : { ciphers: opts.ciphers }),
  }
}

/**
 * A TLS server: TLS 1.2 or later; client certificates as `verifyModeOf` says (2: required
 * and checked against `ca`; 1: asked for, checked only when sent). `connLimit` counts
 * connections still in their handshake too (net.Server's `maxConnections`: more are
 * closed at once, reported by `onRefused`), so clients that never finish one cannot pile
 * up; each is also dropped after HANDSHAKE_TIMEOUT_MS. `onFailed` hears of every handshake
 * that failed (not TLS, a refused certificate, a timeout, a reset); `onNewSession`, with
 * `sessionCache`, of every new session OpenSSL negotiates (not of a resumed one).
 */
export function createTlsServer(
  opts: TlsOptions,
  connLimit: number,
  onSecure: (socket: tls.TLSSocket) => void,
  onRefused: () => void,
  onFailed: (err: Error, socket: tls.TLSSocket) => void,
  onNewSession: () => void = () => {},
): tls.Server {
  const mode = verifyModeOf(opts)
  if (mode > 0 && opts.ca === undefined) {
    // node would check client certificates against its bundled public CAs (memcached
    // refuses them all): neither is what a client certificate check is for
    throw new TypeError(`tls: ssl_verify_mode ${mode} needs the CA file (ssl_ca_cert / --tls-ca)`)
  }
  let server: tls.Server
  try {
    server = tls.createServer(
      {
        ...contextOptions(opts),
        ...(mode > 0 ? { requestCert: true, rejectUnauthorized: mode >= 2 } : {}),
        handshakeTimeout: opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
        // Not half-open (unlike plain TCP): a client that closes its side during the
        // handshake must free its place at once, not hold it until the handshake timeout.
        allowHalfOpen: false,
        noDelay: true,
      },
      (socket) => {
        // mode 1 (request): no certificate is fine, one that does not verify is not
        if (mode === 1 && !socket.authorized && socket.getPeerCertificate().raw !== undefined) {
          // (node gives the reason as a string code, whatever its types say)
          onFailed(new Error(`client certificate refused: ${String(socket.authorizationError)}`), socket)
          socket.destroy()
          return
        }
        onSecure(socket)
      },
    )
    checkKeyMatches(opts.cert, opts.key)
  } catch (err) {
    // Not PEM, a key that does not match the certificate, a cipher list OpenSSL refuses.
    throw new TypeError(`tls: ${(err as Error).message}`)
  }
  server.maxConnections = connLimit
  server.on('drop', onRefused)
  if (opts.sessionCache === true) {
    // OpenSSL's new-session callback, which memcached counts (`ssl_new_sessions`): node
    // holds the handshake until `done` is called
    server.on('newSession', (_id: Buffer, _data: Buffer, done: () => void) => {
      onNewSession()
      done()
    })
  }
  server.on('tlsClientError', (err, socket) => {
    // Nothing to answer. node destroys the socket after a TLS error, but not after the
    // handshake timeout: it only reports it here, and the client would keep its place.
    socket.destroy()
    onFailed(err, socket)
  })
  return server
}

/**
 * memcached's `refresh_certs`: reads the certificate, key and CA files again and gives
 * the servers the new context, for handshakes from now on (connections keep theirs).
 * Returns the options now in force, or throws an Error with memcached's reply words
 * (`Error loading the certificate chain: <path> : <reason>`); then nothing changes.
 */
export function refreshTls(servers: readonly tls.Server[], current: TlsOptions): TlsOptions {
  const files = current.files
  if (files === undefined) throw new Error('Error loading the certificate chain: the certificates were given as PEM contents, not files')
  const load = (what: string, path: string, check: (pem: Buffer) => void): Buffer => {
    try {
      const pem = readFileSync(path)
      check(pem)
      return pem
    } catch (err) {
      throw new Error(`Error loading the ${what}: ${path} : ${(err as Error).message.replace(/[\r\n]+/g, ' ')}`)
    }
  }
  const cert = load('certificate chain', files.cert, (pem) => tls.createSecureContext({ cert: pem }))
  const key = load('key', files.key, (pem) => {
    tls.createSecureContext({ cert, key: pem }) // OpenSSL's reason for a same-type mismatch
    checkKeyMatches(cert, pem)
  })
  // node skips what is not a certificate in a CA file: refuse a file without one
  const ca = files.ca === undefined ? undefined : load('CA certificate', files.ca, checkCaFile)
  const next: TlsOptions = { ...current, cert, key, ...(ca === undefined ? {} : { ca }) }
  const context = contextOptions(next)
  tls.createSecureContext(context) // throws before any server has changed
  for (const server of servers) server.setSecureContext(context)
  return next
}

/**
 * Throws unless `key` is the private key of `cert`'s first (leaf) certificate. OpenSSL
 * checks a pair only when the key is of the certificate's type: an RSA key beside an EC
 * certificate was taken (each in its own slot), and every handshake then failed.
 */
function checkKeyMatches(cert: string | Buffer, key: string | Buffer): void {
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error('the key does not match the certificate')
  }
}

/** A PEM certificate block, the only form node takes from a CA file (OpenSSL's
 * PEM_read_bio_X509_AUX: CERTIFICATE, X509 CERTIFICATE or TRUSTED CERTIFICATE). */
const PEM_CERTIFICATE = /-----BEGIN ((?:TRUSTED |X509 )?CERTIFICATE)-----[^-]*-----END \1-----/

/**
 * Throws unless a CA file holds a PEM certificate: node skips anything else without a word
 * and would then refuse every client certificate. (X509Certificate alone also reads DER,
 * which node's `ca` skips: a DER CA file passed that check.)
 */
function checkCaFile(pem: Buffer): void {
  const block = PEM_CERTIFICATE.exec(pem.toString('latin1'))
  if (block === null) throw new Error('no PEM certificate (-----BEGIN CERTIFICATE-----) in it')
  if (block[1] === 'CERTIFICATE') new X509Certificate(block[0])
}
