// Review of the server-side fixes (16 KiB read boundaries, snapshot loads, delayed flushes):
// each case is sent in one write on a fresh connection to memcached 1.6.18 and ferrocached
// and the reply bytes and whether the server hung up are compared. The first case failed
// before its fix: the native layer feeds a socket read to the session in growing slices
// (256 bytes, then x4), and a request line cut by a slice end with over 2048 bytes of it
// fed was closed as a line with no newline, though memcached reads it whole.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { askOnce as ask, type Answer } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

let memcached: Running
let ferrocached: Running

setUp(test, async () => {
  ;[memcached, ferrocached] = await startAll([() => startMemcached(), () => startFerrocached()])
})

tearDown(test, async () => {
  await Promise.all([memcached?.stop(), ferrocached?.stop()])
})

/** Asserts both servers answer `request` alike; returns memcached's answer. */
async function same(request: Buffer): Promise<Answer> {
  const want = await ask(memcached.port, request)
  const got = await ask(ferrocached.port, request)
  assert.equal(got, want)
  return want
}

const text = (s: string): Buffer => Buffer.from(s, 'latin1')

test('a long request line inside one memcached read is answered wherever the line starts', async () => {
  // a multi-key gat of ~3000 bytes (legitimate: its newline is in memcached's 16 KiB read)
  // and a 7000-byte touch line, each starting before and across the native slice ends
  const keys = Array.from({ length: 300 }, (_, i) => `key${String(i).padStart(5, '0')}`).join(' ')
  const lines = [`gat 0 ${keys}`, `touch k 0${' '.repeat(7_000)}`]
  for (const line of lines) {
    for (const pad of [0, 200, 1_000, 4_000]) {
      const request = text(`set k 0 0 1\r\n1\r\n${'mn\r\n'.repeat(pad / 4)}${line}\r\nmn\r\n`)
      const answer = await same(request)
      assert.ok(answer.reply.endsWith('MN\r\n'), `${line.slice(0, 10)} after ${pad}: ${answer.reply.slice(-40)}`)
      assert.not.ok(answer.closed)
    }
  }
})

test.run()
