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

/** A session played up to its last step: its connections, still open, and the transcript. */
interface Played {
  conns: Conn[]
  transcript: string[]
}

/** The send steps from `from` that go out in one write (`&` steps and the one ending them). */
function nextWrite(steps: Step[], from: number): Array<Extract<Step, { kind: 'send' }>> {
  const write: Array<Extract<Step, { kind: 'send' }>> = []
  for (const step of steps.slice(from)) {
    if (step.kind !== 'send') break
    write.push(step)
    if (step.wait !== 'batch') break
  }
  return write
}

/** Plays every step on `port`; the connections stay open for the tail (closed on a throw). */
async function play(port: number, steps: Step[]): Promise<Played> {
  const conns: Conn[] = []
  const open = async (id: number): Promise<Conn> => {
    const c: Conn = { id, raw: await RawConn.open(port), received: [], cas: '0' }
    conns.push(c)
    return c
  }
  const transcript: string[] = []
  try {
    let conn = await open(1)
    const label = (): string => (conns.length > 1 ? `conn ${conn.id} ` : '')
    let pending: Buffer[] = []
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
      // The next write quotes this reply's CAS, or would cull this reply were the server to
      // read both at once (corpus.ts `culls`): wait for the reply, not just 40 ms of quiet.
      const waitForReply = nextWrite(steps, i + 1).some((s) => s.usesCas || s.culls)
      const reply = await conn.raw.settle(40, 3_000, waitForReply ? 10_000 : 0)
      conn.received.push(reply)
      conn.cas = lastCas(reply) ?? conn.cas
      transcript.push(`${label()}step ${i}: ${normalise(reply)}`)
      if (conn.raw.closed) break
    }
  } catch (err) {
    for (const c of conns) c.raw.close()
    throw err
  }
  return { conns, transcript }
}

/** Takes what arrived since (after `quietMs` of quiet) on each connection. */
async function tail(played: Played, quietMs: number): Promise<void> {
  for (const c of played.conns) {
    const late = await c.raw.settle(quietMs)
    c.received.push(late)
    if (late.length > 0) played.transcript.push(`${played.conns.length > 1 ? `conn ${c.id} ` : ''}late: ${normalise(late)}`)
  }
}

function result(played: Played): Replayed {
  const { conns } = played
  const several = conns.length > 1
  const streams = conns.map(
    (c) => `${several ? `[conn ${c.id}]\n` : ''}${normalise(Buffer.concat(c.received))}\n[${c.raw.closed ? 'closed by server' : 'open'}]`,
  )
  const ends = conns.map((c) => `${several ? `conn ${c.id} ` : ''}${c.raw.closed ? 'closed by server' : 'open'}`)
  return { stream: streams.join('\n'), transcript: [...played.transcript, ...ends] }
}

/** Replays `steps` on `port`, then takes anything that arrives late (150 ms of quiet). */
export async function replay(port: number, steps: Step[]): Promise<Replayed> {
  const played = await play(port, steps)
  try {
    // Anything that arrives late, and whether the server hung up: a longer wait, since
    // the stream compared ends here.
    await tail(played, 150)
    return result(played)
  } finally {
    for (const c of played.conns) c.raw.close()
  }
}

/**
 * Replays `steps` on both servers at once, for comparing: [reference, subject]. The
 * streams end where the replies stop, so a server held up past the 150 ms tail (a busy
 * machine) would lose its last replies: while the two streams differ, both are read on,
 * up to `catchUpMs`. The same streams cost nothing more; a real difference costs the
 * wait once.
 */
export async function replayPair(reference: number, subject: number, steps: Step[], catchUpMs = 5_000): Promise<[Replayed, Replayed]> {
  const runs = await Promise.allSettled([play(reference, steps), play(subject, steps)])
  const played = runs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  try {
    for (const r of runs) if (r.status === 'rejected') throw r.reason
    const [a, b] = played as [Played, Played]
    await Promise.all([tail(a, 150), tail(b, 150)])
    const deadline = Date.now() + catchUpMs
    while (result(a).stream !== result(b).stream && Date.now() < deadline) await Promise.all([tail(a, 150), tail(b, 150)])
    return [result(a), result(b)]
  } finally {
    for (const p of played) for (const c of p.conns) c.raw.close()
  }
}
