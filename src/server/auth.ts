// Access control around the protocol sessions: the user file that turns logins on
// (memcached's -Y format, checked in Rust: crates/ferrocache-protocol/src/auth.rs) and
// the warning for a cache reachable from other machines without them.
import { readFileSync } from 'node:fs'
import * as net from 'node:net'

/**
 * Reads a memcached user file (`username:password` per line); its lines are checked by
 * NativeServerInfo.setUsers. Throws a TypeError naming the file.
 */
export function readUserFile(path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new TypeError(`cannot read the user file: ${(err as Error).message}`)
  }
}

/** Whether a bound address only accepts connections from this machine. */
export function isLoopback(address: string): boolean {
  if (address === 'localhost') return true
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  if (net.isIPv4(v4)) return v4.startsWith('127.')
  return net.isIPv6(address) && /^(0{0,4}:){7}0{0,3}1$|^::1$/i.test(address)
}

/**
 * The warning logged at start when the cache listens beyond this machine without logins
 * (anyone who reaches the port can read, change and flush it), or undefined.
 */
export function exposureWarning(address: string, authenticated: boolean): string | undefined {
  if (authenticated || isLoopback(address)) return undefined
  return (
    `listening on ${address} without authentication: anyone who can reach this port can read, ` +
    'change and flush the cache; require logins with -Y/--auth-file (and TLS with --tls-cert/--tls-key), ' +
    'or listen on 127.0.0.1'
  )
}
