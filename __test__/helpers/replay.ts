// Replays a parsed corpus session on a fresh connection. Returns the whole reply stream,
// normalised, ending with whether the server closed the connection (what tests compare:
// memcached itself answers some requests only when the next one arrives, so where a
// step's reply lands is timing, not behaviour), and a per-step transcript for reading.
import { lastCas, normalise, type Step } from './corpus'
import { RawConn } from './raw'
import { sleep } from './servers'

export interface Replayed {
  stream: string
  transcript: string[]
}

export async function replay(port: number, steps: Step[]): Promise<Replayed> {
  const conn = await RawConn.open(port)
  const transcript: string[] = []
  const received: Buffer[] = []
  let pending: Buffer[] = []
  // `$CAS` in a request stands for the last CAS value this server sent on this connection.
  let cas = '0'
  try {
    for (const [i, step] of steps.entries()) {
      if (step.kind === 'sleep') {
        await sleep(step.ms)
        continue
      }
      pending.push(step.build(cas))
      if (step.wait === 'batch') continue
      conn.send(Buffer.concat(pending))
      pending = []
      if (step.wait === 'none') {
        // Give the write its own TCP segment before the next one goes out.
        await sleep(15)
        continue
      }
      const reply = await conn.settle()
      received.push(reply)
      cas = lastCas(reply) ?? cas
      transcript.push(`step ${i}: ${normalise(reply)}`)
      if (conn.closed) break
    }
    // Anything that arrives late, and whether the server hung up: a longer wait, since
    // the stream compared ends here.
    const tail = await conn.settle(150)
    received.push(tail)
    if (tail.length > 0) transcript.push(`late: ${normalise(tail)}`)
    transcript.push(conn.closed ? 'closed by server' : 'open')
  } finally {
    conn.close()
  }
  const stream = `${normalise(Buffer.concat(received))}\n[${conn.closed ? 'closed by server' : 'open'}]`
  return { stream, transcript }
}
