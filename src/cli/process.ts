// The process side of memcached's flags: -u (switch user after binding), -P (pid file),
// -d (run detached; the command returns once the server listens).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { dirname, resolve } from 'node:path'
import type { Logger } from '../server/log'

/** Set in the detached copy -d starts (the copy then runs as usual and reports "listening"). */
export const DAEMON_CHILD = 'FERROCACHED_DAEMON_CHILD'

/** A user's ids, from the system's user database. */
export interface UserIds {
  name: string
  uid: number
  gid: number
}

/** `getent passwd <name>` (NSS: files, LDAP…), else /etc/passwd; null if there is no such user. */
export function lookUpUser(name: string): UserIds | null {
  let line: string | undefined
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]
  } catch {
    // getent missing, or exit 2: not found; /etc/passwd decides
    try {
      line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[0] === name)
    } catch {
      line = undefined
    }
  }
  const fields = line?.split(':')
  if (fields === undefined || fields.length < 4 || fields[0] !== name) return null
  const uid = Number(fields[2])
  const gid = Number(fields[3])
  return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : null
}

/** Whether this process runs as root (-u switches users only then). */
export function isRoot(): boolean {
  return process.getuid?.() === 0
}

/**
 * memcached's -u: as root, drop supplementary groups, then take the user's group and id.
 * `handOver` (the Unix socket, bound as root) is given to the user first: memcached creates
 * its socket after switching, so the user (and, with -a, its group) can connect, and the
 * socket can be removed at stop from a sticky directory such as /tmp.
 * Not root: nothing to do (memcached ignores -u then too). Throws if the system refuses.
 */
export function switchUser(user: UserIds, log: Logger, handOver: string[] = []): void {
  if (!isRoot()) {
    log.info({ user: user.name }, '-u: not running as root, the user stays as it is')
    return
  }
  for (const path of handOver) chownSync(path, user.uid, user.gid)
  process.setgroups!([user.gid])
  process.setgid!(user.gid)
  process.setuid!(user.uid)
  log.info({ user: user.name, uid: user.uid, gid: user.gid }, 'switched user')
}

/**
 * -u with --data-dir, as root: snapshots and the append-only log's rewrites are written
 * after the switch, as the user. A missing directory is created for the user, and so are the
 * missing parents it needs (owned by the user, so a umask such as 027 cannot shut the user
 * out of the directory made for it); a directory the user cannot write to, or cannot reach
 * through a parent, is an error message naming the path at fault (else every save would
 * fail, seen only at stop). Checked as the user (ACLs count) by a short-lived node; null
 * when fine.
 */
export function dataDirProblem(dir: string, user: UserIds): string | null {
  if (!isRoot()) return null
  const full = resolve(dir)
  try {
    if (!existsSync(full)) {
      const firstMade = mkdirSync(dirname(full), { recursive: true })
      mkdirSync(full, { mode: 0o700 })
      for (const made of firstMade === undefined ? [full] : [...madeBelow(firstMade, full), full]) chownSync(made, user.uid, user.gid)
    }
  } catch (err) {
    return `cannot create the data directory ${dir} for the user ${user.name}: ${(err as Error).message}`
  }
  // prints the first parent the user cannot pass through, or the directory itself if that is
  // what fails; nothing when all is well
  const check = `const fs = require('fs'), path = require('path'); const dir = process.argv[1];
const parents = []; for (let p = path.dirname(dir); ; p = path.dirname(p)) { parents.unshift(p); if (p === path.dirname(p)) break }
for (const p of parents) { try { fs.accessSync(p, fs.constants.X_OK) } catch { process.stdout.write(p); process.exit(1) } }
try { fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK) } catch { process.stdout.write(dir); process.exit(1) }`
  // no environment: the check runs as the user, and any process of that user may read a
  // process's environ (FERROCACHE_REPLICA_AUTH, which -d hands its copy, among others)
  const r = spawnSync(process.execPath, ['-e', check, full], { uid: user.uid, gid: user.gid, env: {}, stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 })
  if (r.status === 0) return null
  const blocking = r.stdout.toString()
  if (blocking !== '' && blocking !== full) {
    return `the data directory ${dir} cannot be reached by the user ${user.name} (-u): ${blocking} does not let it through; snapshots are written as that user; give it search permission there (chmod o+x ${blocking}) or run without -u`
  }
  return `the data directory ${dir} is not writable by the user ${user.name} (-u): snapshots are written as that user; make it the owner (chown ${user.name} ${dir}) or run without -u`
}

/** The directories from `top` down to `leaf`'s parent: what a recursive mkdir that began at `top` made. */
function madeBelow(top: string, leaf: string): string[] {
  const made: string[] = []
  for (let p = dirname(leaf); p.length >= top.length; p = dirname(p)) {
    made.unshift(p)
    if (p === top || p === dirname(p)) break
  }
  return made
}

/** -P: writes this process's id; a failure is logged and the server keeps running (as memcached). */
export function writePidFile(path: string, log: Logger): boolean {
  try {
    writeFileSync(path, `${process.pid}\n`)
    return true
  } catch (err) {
    log.error({ err: (err as Error).message, pidFile: path }, 'cannot write the pid file')
    return false
  }
}

/**
 * memcached's `MEMCACHED_PORT_FILENAME` (its test suite starts it with `-p -1` and reads the
 * port picked there): a `TCP INET: <port>` / `TCP INET6: …` line per TCP listener, then the
 * `UDP …` ones, written to `<path>.lck` and renamed to `path`. A failure is logged and the
 * server keeps running, as memcached's "Failed to open".
 */
export function writePortFile(path: string, bound: { tcp: readonly AddressInfo[]; udp: readonly AddressInfo[] }, log: Logger): void {
  const line = (kind: string, a: AddressInfo): string => `${kind} ${a.family === 'IPv6' ? 'INET6' : 'INET'}: ${a.port}\n`
  const text = [...bound.tcp.map((a) => line('TCP', a)), ...bound.udp.map((a) => line('UDP', a))].join('')
  try {
    writeFileSync(`${path}.lck`, text)
    renameSync(`${path}.lck`, path)
  } catch (err) {
    log.error({ err: (err as Error).message, portFile: path }, 'cannot write the port file (MEMCACHED_PORT_FILENAME)')
  }
}

/** Removes the pid file if it still holds this process's id. */
export function removePidFile(path: string, log: Logger): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path)
  } catch (err) {
    log.warn({ err: (err as Error).message, pidFile: path }, 'cannot remove the pid file')
  }
}

/** In a -d copy: tells the waiting command that the server listens, and lets it go. */
export function tellParentListening(): void {
  if (process.env[DAEMON_CHILD] !== '1' || process.send === undefined) return
  process.send('listening')
  process.disconnect?.()
}

/**
 * -d: starts a detached copy of this command (its own session, stdin closed; stderr kept
 * only with -v, as memcached keeps its output when verbose) and waits until it listens:
 * 0, or the copy's exit code if it stops first (the reason is in its log).
 */
export function daemonize(argv: string[], env: NodeJS.ProcessEnv, keepStderr: boolean): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
    detached: true,
    stdio: ['ignore', 'ignore', keepStderr ? 'inherit' : 'ignore', 'ipc'],
    env: { ...env, [DAEMON_CHILD]: '1' },
  })
  return new Promise((resolve) => {
    child.once('message', () => {
      child.disconnect()
      child.unref()
      resolve(0)
    })
    child.once('exit', (code, signal) => {
      process.stderr.write(
        `ferrocached: the daemon stopped before listening (${signal ?? `exit code ${code}`})${keepStderr ? '' : '; run without -d, or with -v, to see why'}\n`,
      )
      resolve(code ?? 1)
    })
    child.once('error', (err) => {
      process.stderr.write(`ferrocached: cannot start the daemon: ${err.message}\n`)
      resolve(1)
    })
  })
}
