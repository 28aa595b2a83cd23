// libmemcached-tools as a client of clients-differential.test.ts: each call of a sequence
// is one run of a tool (memccp --set/--add/--replace, memccat, memcrm, memctouch,
// memcexist, memcflush, memcstat), text or --binary, on server A and then on B; a call's
// result is the tool's exit code and output with the server's port made alike.
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Op } from './clientgen'
import { value, when } from './clientnode'
import { run } from './servers'

const COUNTERS = /^\t(cmd_get|cmd_set|cmd_flush|cmd_touch|get_hits|get_misses|delete_misses|delete_hits|touch_hits|touch_misses|store_too_large|store_no_memory): /

/** The tool's arguments for `op` (a value written to `dir`/<key> for memccp). */
function command(op: Op, dir: string, binary: boolean): [string, string[]] {
  const proto = binary ? ['--binary'] : []
  const key = op.key ?? ''
  switch (op.op) {
    case 'set':
    case 'add':
    case 'replace': {
      const v = value(op.value!)
      const file = join(dir, key)
      writeFileSync(file, typeof v === 'number' ? String(v) : v)
      return ['memccp', [...proto, `--${op.op}`, `--expire=${when(op.ttl)}`, '--flags=3', 'SERVERS', file]]
    }
    case 'get':
      return ['memccat', [...proto, '--flag', 'SERVERS', key]]
    case 'delete':
      return ['memcrm', [...proto, 'SERVERS', key]]
    case 'touch':
      return ['memctouch', [...proto, `--expire=${when(op.ttl)}`, 'SERVERS', key]]
    case 'exist':
      return ['memcexist', [...proto, 'SERVERS', ...(op.keys ?? [key])]]
    case 'flush':
      return ['memcflush', [...proto, 'SERVERS', ...(op.delay ? [`--expire=${op.delay}`] : [])]]
    case 'stats':
      return ['memcstat', [...proto, 'SERVERS']]
  }
  throw new Error(`libmemcached-tools have no ${op.op}`)
}

/** One call through the tools on `port`: exit code and output. */
async function call(op: Op, port: number, dir: string, binary: boolean): Promise<unknown> {
  const [tool, args] = command(op, dir, binary)
  const r = await run(`/usr/bin/${tool}`, args.map((a) => (a === 'SERVERS' ? `--servers=127.0.0.1:${port}` : a)), { ms: 20_000 })
  let out = (r.stdout + r.stderr).replaceAll(String(port), 'PORT').replaceAll(dir, 'DIR').replace(/\(0x[0-9a-f]+\)/g, '(0xADDR)')
  if (op.op === 'stats') out = out.split('\n').filter((l) => COUNTERS.test(l)).join('\n')
  // long values by length and a digest
  if (out.length > 300) out = `${out.length} bytes: ${JSON.stringify(out.slice(0, 100))}…${createHash('sha1').update(out).digest('hex').slice(0, 16)}`
  return [r.code, out]
}

/** Runs one sequence through the tools on both servers in lockstep: [a, b] results. */
export async function toolsLockstep(binary: boolean, ops: Op[], a: number, b: number): Promise<[unknown[], unknown[]]> {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-clients-'))
  const results: [unknown[], unknown[]] = [[], []]
  try {
    for (const op of ops) {
      results[0].push(await call(op, a, dir, binary))
      results[1].push(await call(op, b, dir, binary))
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return results
}
