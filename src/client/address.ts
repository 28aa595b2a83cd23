// Server addresses as strings: `host`, `host:port`, `host:port:weight` (twemproxy's form),
// and IPv6 literals, bracketed when a port follows (`[::1]:11211`) or bare alone (`::1`).
import { isIPv6 } from 'node:net'

export const DEFAULT_PORT = 11211

/** An IPv6 address, with or without a zone id (`fe80::1%eth0`). A zone id holding a colon
 * is refused: Node's `isIPv6` takes one, so `fe80::1%lo:11311` would be the address
 * "fe80::1%lo:11311" on port 11211, not lo's fe80::1 on port 11311. */
function isAddress6(text: string): boolean {
  const zone = text.indexOf('%')
  return isIPv6(text) && (zone === -1 || !text.includes(':', zone))
}

/** A server string split up; port and weight as written (checked by the caller). */
export interface AddressParts {
  host: string
  port?: string
  weight?: string
}

/** `[host]:port` for IPv6 addresses, `host:port` otherwise: how servers are named in
 * messages, `servers`, `serverFor` and `statsByServer`. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** A host as given in the object form: a name or an address, IPv6 with or without brackets. */
export function plainHost(host: string, name: string): string {
  if (!host.startsWith('[')) return host
  const inner = host.endsWith(']') ? host.slice(1, -1) : ''
  if (!isAddress6(inner)) throw new TypeError(`${name} must be a host name or an address, got '${host}'`)
  return inner
}

/** Splits a server string; throws a TypeError naming `name` when it is malformed. */
export function splitAddress(spec: string, name: string): AddressParts {
  const shape = `${name} must look like 'host:port', 'host:port:weight', '[ipv6]:port' or a bare IPv6 address, got '${spec}'`
  if (spec.startsWith('[')) {
    const m = /^\[([^\]\s]+)\](?::(\d+))?(?::(\d+))?$/.exec(spec)
    if (!m) throw new TypeError(shape)
    if (!isAddress6(m[1]!)) throw new TypeError(`${name}: '${m[1]}' in brackets is not an IPv6 address`)
    return { host: m[1]!, port: m[2], weight: m[3] }
  }
  if (spec.includes(']')) throw new TypeError(shape)
  const colons = spec.split(':').length - 1
  // A bare IPv6 address takes the default port; with a port it must be bracketed, or the
  // port would read as its last group. Only IPv6 has more colons than `host:port:weight`.
  if (colons >= 2 && isAddress6(spec)) return { host: spec }
  if (colons > 2) {
    throw new TypeError(`${name}: '${spec}' is not an IPv6 address; write an IPv6 address with a port as '[address]:port'`)
  }
  const m = /^([^\s:]+)(?::(\d+))?(?::(\d+))?$/.exec(spec)
  if (!m) throw new TypeError(shape)
  return { host: m[1]!, port: m[2], weight: m[3] }
}
