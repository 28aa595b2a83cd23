// TLS for the memcached port (--tls-cert/--tls-key/--tls-ca, memcached's -Z): node's `tls`
// server in front of the same Connection, which then reads with 'data' events and writes
// with socket.write (its direct-to-descriptor path only suits plain TCP sockets).
import { readFileSync } from 'node:fs'
import tls from 'node:tls'

/** PEM contents (not paths), as node's `tls.createServer` takes them. */
export interface TlsOptions {
  /** The server's certificate chain. */
  cert: string | Buffer
  /** Its private key. */
  key: string | Buffer
  /** CA certificates: with one, clients must present a certificate it signed. */
  ca?: string | Buffer
}

/** Paths of the PEM files, as the command line names them. */
export interface TlsFiles {
  cert: string
  key: string
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
  const out: TlsOptions = { cert: read('certificate', files.cert), key: read('key', files.key) }
  if (files.ca !== undefined) out.ca = read('CA file', files.ca)
  return out
}

/**
 * A TLS server: TLS 1.2 or later; with `ca`, client certificates are required and checked.
 * `connLimit` counts connections still in their handshake too (net.Server's
 * `maxConnections`: more are closed at once, reported by `onRefused`), so clients that
 * never finish one cannot pile up; each is also dropped after HANDSHAKE_TIMEOUT_MS.
 */
export function createTlsServer(
  opts: TlsOptions,
  connLimit: number,
  onSecure: (socket: tls.TLSSocket) => void,
  onRefused: () => void,
): tls.Server {
  const requireCert = opts.ca !== undefined
  let server: tls.Server
  try {
    server = tls.createServer(
      {
        cert: opts.cert,
        key: opts.key,
        ...(requireCert ? { ca: opts.ca, requestCert: true, rejectUnauthorized: true } : {}),
        minVersion: 'TLSv1.2',
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        // Not half-open (unlike plain TCP): a client that closes its side during the
        // handshake must free its place at once, not hold it until the handshake timeout.
        allowHalfOpen: false,
        noDelay: true,
      },
      onSecure,
    )
  } catch (err) {
    // Not PEM, or a key that does not match the certificate.
    throw new TypeError(`tls: ${(err as Error).message}`)
  }
  server.maxConnections = connLimit
  server.on('drop', onRefused)
  // A failed handshake (no or a bad client certificate, not TLS at all): node destroys
  // the socket; nothing to answer.
  server.on('tlsClientError', () => {})
  return server
}
