// `stats conns`: secs_since_last_cmd counts from a connection's last command, as memcached's
// (conn->last_cmd_time), not from when it connected. Every wait is bounded; the server is
// stopped by its PID.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RawConn } from './helpers/raw'
import { sleep, startFerrocached, stopChild, type Running } from './helpers/servers'
import { tearDown } from './helpers/guard'

let server: Running | undefined

tearDown(test, async () => {
  if (server !== undefined) await stopChild(server.child)
})

/** The `secs_since_last_cmd` of the connection whose peer port is `port`. */
async function secsSinceLastCmd(admin: RawConn, port: number): Promise<number> {
  admin.send('stats conns\r\n')
  const text = await admin.until('END\r\n')
  const id = new RegExp(`STAT (\\d+):addr tcp:127\\.0\\.0\\.1:${port}\\r\\n`).exec(text)?.[1]
  assert.ok(id !== undefined, text)
  const secs = new RegExp(`STAT ${id}:secs_since_last_cmd (\\d+)\\r\\n`).exec(text)?.[1]
  assert.ok(secs !== undefined, text)
  return Number(secs)
}

test('secs_since_last_cmd restarts at each command', async () => {
  server = await startFerrocached()
  const idle = await RawConn.open(server.port)
  const busy = await RawConn.open(server.port)
  const admin = await RawConn.open(server.port)
  busy.send('version\r\n')
  await busy.until('\r\n')
  await sleep(2_200)
  busy.send('set k 0 0 1\r\nv\r\n')
  await busy.until('STORED\r\n')
  const idleSecs = await secsSinceLastCmd(admin, idle.socket.localPort!)
  const busySecs = await secsSinceLastCmd(admin, busy.socket.localPort!)
  assert.ok(idleSecs >= 2, `a connection without commands counts from connect: ${idleSecs}`)
  // relative to the idle one, so a stall of the machine before the stats read moves both
  assert.ok(busySecs < idleSecs, `counted from the last command: ${busySecs} (idle ${idleSecs})`)
  for (const c of [idle, busy, admin]) c.close()
})

test.run()
