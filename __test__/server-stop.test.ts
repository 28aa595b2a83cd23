// Stopping a server does not wait on clients that keep their connection open: an idle
// pooled connection that never closes its side is closed shortly after the server's FIN,
// and the replies sent before the stop still reach the client. (Before, close() waited
// for its timeout and then destroyed the socket.)
import { connect, type Socket } from 'node:net'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type FerrocacheServer } from '../src'
import { tearDown } from './helpers/guard'

const stop = suite<{ server?: FerrocacheServer; sockets: Socket[] }>('server stop', { sockets: [] })
tearDown(stop, async (ctx) => {
  for (const s of ctx.sockets) s.destroy()
  await ctx.server?.close(100)
})

stop('close() ends idle connections that never close their side, replies delivered', async (ctx) => {
  const server = createServer({ port: 0, host: '127.0.0.1' })
  ctx.server = server
  const { port } = await server.listen()
  const open = async (): Promise<{ socket: Socket; received: () => string; ended: Promise<void> }> => {
    // allowHalfOpen: like a pooled client that does not answer the server's FIN
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    ctx.sockets.push(socket)
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (d) => (text += d.toString('latin1')))
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    return { socket, received: () => text, ended }
  }
  const idle = await open()
  const busy = await open()
  idle.socket.write('set k 0 0 1\r\nv\r\n')
  busy.socket.write(`${'get k\r\n'.repeat(200)}`)
  while (!idle.received().includes('STORED') || busy.received().split('END').length < 201) {
    await new Promise((r) => setTimeout(r, 10))
  }
  // a timeout far beyond the linger: close() must not need it
  const closed = server.close(600_000).then(() => 'closed' as const)
  const limit = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000).unref())
  assert.is(await Promise.race([closed, limit]), 'closed', 'close() waited on connections the client kept open')
  await Promise.all([idle.ended, busy.ended])
  assert.is(idle.received(), 'STORED\r\n')
  assert.is(busy.received(), 'VALUE k 0 1\r\nv\r\nEND\r\n'.repeat(200))
})

stop.run()
