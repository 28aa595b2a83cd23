// -c and the open-file limit, as memcached 1.6.18 starts: the limit is raised to the
// connection limit, and a limit that cannot be raised stops the start (exit 71, EX_OSERR)
// instead of connections being dropped unanswered once descriptors run out.
import { native } from '../native'

/** memcached's words when it cannot raise the limit (stderr, no prefix). */
export const FILE_LIMIT_REFUSED = 'failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.'

/** memcached's exit code then: EX_OSERR. */
export const FILE_LIMIT_EXIT = 71

/** Whether the process can hold `connections` sockets (raising its limit if needed). */
export function roomForConnections(connections: number): boolean {
  return native.raiseFileLimit(connections)
}
