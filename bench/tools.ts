// What several benchmarks share: a free port and the C load generator (bench/loadgen).
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'

const ROOT = join(__dirname, '..')
const LOADGEN_SRC = join(ROOT, 'bench', 'loadgen', 'loadgen.c')
/** The compiled generator (built on demand by `buildLoadgen`). */
export const LOADGEN_BIN = join(ROOT, 'bench', '.build', 'loadgen')

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

/** Compile the generator when the binary is missing or older than its source. */
export function buildLoadgen(): void {
  if (existsSync(LOADGEN_BIN) && statSync(LOADGEN_BIN).mtimeMs >= statSync(LOADGEN_SRC).mtimeMs) return
  mkdirSync(join(ROOT, 'bench', '.build'), { recursive: true })
  const cc = process.env.CC ?? 'cc'
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-o', LOADGEN_BIN, LOADGEN_SRC, '-lpthread'], { stdio: 'inherit' })
}
