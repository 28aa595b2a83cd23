// TLS to the servers (memcached `-Z`, ferrocached `--tls-cert`): the `tls` option checked
// once, its certificates loaded once into a secure context every connection shares, and
// the sockets opened with `tls.connect`, SNI naming the host unless it is an address.
import { isIP } from 'node:net'
import * as tls from 'node:tls'

/** The `tls` option: `true` (the system's CAs), `false` (plain TCP, the default), or
 * Node's `tls.connect` options (`ca`, `cert`, `key`, `servername`, `rejectUnauthorized`…). */
export type TlsOption = boolean | tls.ConnectionOptions

/** A checked `tls` option, ready to connect with. */
export interface TlsSettings {
  /** What `tls.connect` gets besides the address. */
  options: tls.ConnectionOptions
  /** Certificates and keys, parsed once for every connection. */
  context: tls.SecureContext
}

/** Where the connection goes comes from `servers`, not from `tls`. */
const ADDRESS_KEYS = ['host', 'port', 'path', 'socket'] as const

/** `option` checked (`name` is how messages call it): TLS settings, or undefined for
 * plain TCP. Bad values are TypeErrors naming the option, certificate and key files that
 * cannot be read included. */
export function parseTls(option: unknown, name: string): TlsSettings | undefined {
  if (option === undefined || option === false) return undefined
  if (option === true) return { options: {}, context: tls.createSecureContext() }
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw new TypeError(`${name} must be true, false or an object of tls.connect options (ca, cert, key, servername…), got ${describe(option)}`)
  }
  const o = option as tls.ConnectionOptions
  for (const key of ADDRESS_KEYS) {
    if (o[key] !== undefined) throw new TypeError(`${name}.${key} cannot be set: the address comes from servers`)
  }
  if (o.servername !== undefined && typeof o.servername !== 'string') {
    throw new TypeError(`${name}.servername must be a string, got ${describe(o.servername)}`)
  }
  if (o.rejectUnauthorized !== undefined && typeof o.rejectUnauthorized !== 'boolean') {
    throw new TypeError(`${name}.rejectUnauthorized must be a boolean, got ${describe(o.rejectUnauthorized)}`)
  }
  if (o.checkServerIdentity !== undefined && typeof o.checkServerIdentity !== 'function') {
    throw new TypeError(`${name}.checkServerIdentity must be a function, got ${describe(o.checkServerIdentity)}`)
  }
  if (o.secureContext !== undefined) {
    if (!(o.secureContext instanceof Object) || !('context' in o.secureContext)) {
      throw new TypeError(`${name}.secureContext must come from tls.createSecureContext()`)
    }
    return { options: { ...o }, context: o.secureContext }
  }
  let context: tls.SecureContext
  try {
    context = tls.createSecureContext(o)
  } catch (err) {
    // Node names the property for a wrong type; OpenSSL's PEM errors name none.
    const e = err as NodeJS.ErrnoException
    throw new TypeError(`${name}: ${e.message}${e.code !== undefined && !e.message.includes(e.code) ? ` (${e.code})` : ''}`)
  }
  return { options: { ...o }, context }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
}

/** A TLS socket to `host:port`. SNI names the host unless it is an IP address (or the
 * option's `servername` says otherwise); the certificate is checked against the same name. */
export function connectTls(host: string, port: number, settings: TlsSettings): tls.TLSSocket {
  const servername = settings.options.servername ?? (isIP(host) === 0 ? host : undefined)
  const socket = tls.connect({
    ...settings.options,
    secureContext: settings.context,
    host,
    port,
    ...(servername === undefined ? {} : { servername }),
  })
  socket.setNoDelay(true)
  return socket
}
