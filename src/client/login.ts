// memcached 1.6's text login (`-Y` user file), sent first on every connection: a `set`
// whose value is `user pass`. Servers with logins ignore the key, flags and exptime and
// answer STORED or CLIENT_ERROR; the same bytes work before meta and text requests.
import type { Pending } from './connection'
import { cacheError, type CacheError } from './errors'

/** The `username`/`password` options. */
export interface Login {
  username: string
  password: string
}

/** The key the login names. Exptime -1: a server without logins stores nothing lasting
 * (the item is expired at once) rather than keeping the password. */
export const LOGIN_KEY = 'ferrocache:login'

/** The login request as `Connection.send` takes it: text, value, tail. */
export function loginRequest(login: Login): [string, string] {
  return [`set ${LOGIN_KEY} 0 -1 `, `${login.username} ${login.password}`]
}

/** Reads the login's reply: STORED lets the requests queued behind it go on; anything
 * else closes the connection, failing them with FERROCACHE_AUTH and the server's words. */
export class LoginReply implements Pending {
  broken = false
  failure: CacheError | undefined

  constructor(
    readonly deadline: number,
    private readonly username: string,
    private readonly server: string,
    private readonly loggedIn: () => void,
  ) {}

  reply(head: string): boolean {
    if (head === 'STORED') this.loggedIn()
    else {
      this.broken = true
      this.failure = cacheError(Error, 'FERROCACHE_AUTH', `login to ${this.server} as '${this.username}' failed: ${head.slice(0, 100)}`, this.server)
    }
    return true
  }

  fail(): void {
    // The connection failed: the requests queued behind the login get its error.
  }
}
