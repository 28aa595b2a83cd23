// What the slab-class tests (slab-sizes, slab-chunk-max) read from both servers alike.
import { RawConn } from './raw'

/** Sends `request` on a new connection to `port` and reads until the reply ends with `end`. */
export async function askUntil(port: number, request: string, end = 'END\r\n'): Promise<string> {
  const c = await RawConn.open(port)
  try {
    c.send(request)
    return await c.until(end, 10_000)
  } finally {
    c.close()
  }
}

/** `STAT <name> <value>` lines whose name matches, as `name value` in order. */
export function statLines(text: string, name: RegExp): string[] {
  return text.split('\r\n').filter((l) => l.startsWith('STAT ') && name.test(l.split(' ')[1]!)).map((l) => l.slice(5))
}
