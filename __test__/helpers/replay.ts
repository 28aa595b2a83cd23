// Replays a parsed corpus session on a fresh connection and returns a readable transcript
// of the normalised replies, one entry per `>` step, plus whether the server closed.
import { lastCas, normalise, type Step } from './corpus'
import { RawConn } from './raw'
import { sleep } from './servers'

export async function replay(port: number, steps: Step[]): Promise<string[]> {
  const conn = await RawConn.open(port)
  const transcript: string[] = []
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
      cas = lastCas(reply) ?? cas
      transcript.push(`step ${i}: ${normalise(reply)}`)
      if (conn.closed) break
    }
    // Anything that arrives late, and whether the server hung up.
    const tail = await conn.settle()
    if (tail.length > 0) transcript.push(`late: ${normalise(tail)}`)
    transcript.push(conn.closed ? 'closed by server' : 'open')
  } finally {
    conn.close()
  }
  return transcript
}
