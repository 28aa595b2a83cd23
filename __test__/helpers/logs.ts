// A pino logger that keeps what it logs, for tests that check a log line was written.
import { Writable } from 'node:stream'
import pino from 'pino'

/** A pino logger (level info) whose JSON lines land in `lines`, parsed. */
export function collectingLogger<L>(lines: L[]): pino.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.startsWith('{')) lines.push(JSON.parse(l) as L)
      done()
    },
  })
  return pino({ level: 'info' }, sink)
}
