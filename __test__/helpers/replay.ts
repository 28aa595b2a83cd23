// Replays a parsed corpus session on fresh connections (one unless the session switches with
// `conn N`). Returns the whole reply stream, normalised, ending with whether the server
// closed the connection (what tests compare: memcached itself answers some requests only
// when the next one arrives, so where a step's reply lands is timing, not behaviour), and a
// per-step transcript for reading. With several connections the stream is each one's in
// turn, headed `[conn N]`.
import { lastCas, normalise, type Step } from './corpus'
import { RawConn } from './raw'
import { sleep } from './servers'

export interface Replayed {
  stream: string
  transcript: string[]
}

/** One connection of a session: what it received and the last CAS value it was sent. */
interface Conn {
  id: number
  raw: RawConn
  received: Buffer[]
  cas: string
}

export async function replay(port: number, steps: Step[]): Promise<Replayed> {
  const conns: Conn[] = []
  const open = async (id: number): Promise<Conn> => {
    const c: Conn = { id, raw: await RawConn.open(port), received: [], cas: '0' }
    conns.push(c)
    return c
  }
  let conn = await open(1)
  const transcript: string[] = []
  const label = (): string => (conns.length > 1 ? `conn ${conn.id} ` : '')
  let pending: Buffer[] = []
  try {
    for (const [i, step] of steps.entries()) {
      if (step.kind === 'sleep') {
        await sleep(step.ms)
        continue
      }
      if (step.kind === 'conn') {
        if (pending.length > 0) throw new Error(`step ${i}: conn ${step.id} inside a batch of writes`)
        conn = conns.find((c) => c.id === step.id) ?? (await open(step.id))
        continue
      }
      // `$CAS` stands for the last CAS value this server sent on this connection.
      pending.push(step.build(conn.cas))
      if (step.wait === 'batch') continue
      conn.raw.send(Buffer.concat(pending))
      pending = []
      if (step.wait === 'none') {
        // Give the write its own TCP segment before the next one goes out.
        await sleep(15)
        continue
      }
      // The next request quotes this reply's CAS: wait for the reply, not just 40 ms of quiet.
      const next = steps[i + 1]
      const reply = await conn.raw.settle(40, 3_000, next?.kind === 'send' && next.usesCas ? 10_000 : 0)
      conn.received.push(reply)
      conn.cas = lastCas(reply) ?? conn.cas
      transcript.push(`${label()}step ${i}: ${normalise(reply)}`)
      if (conn.raw.closed) break
    }
    // Anything that arrives late, and whether the server hung up: a longer wait, since
    // the stream compared ends here.
    for (const c of conns) {
      conn = c
      const tail = await c.raw.settle(150)
      c.received.push(tail)
      if (tail.length > 0) transcript.push(`${label()}late: ${normalise(tail)}`)
      transcript.push(`${label()}${c.raw.closed ? 'closed by server' : 'open'}`)
    }
  } finally {
    for (const c of conns) c.raw.close()
  }
  const streams = conns.map(
    (c) => `${conns.length > 1 ? `[conn ${c.id}]\n` : ''}${normalise(Buffer.concat(c.received))}\n[${c.raw.closed ? 'closed by server' : 'open'}]`,
  )
  return { stream: streams.join('\n'), transcript }
}
