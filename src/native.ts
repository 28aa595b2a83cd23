// Loads the compiled Rust engine: the installed per-platform package first (what
// `npm install ferrocache` brings), then a `.node` built from this checkout.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type * as Binding from '../native/index'

/** The napi-rs binding's exports (`native/index.d.ts`). */
export type NativeBinding = typeof Binding

function isMusl(): boolean {
  if (process.platform !== 'linux') return false
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
  return !report?.header?.glibcVersionRuntime
}

/** napi-rs's platform triple for this process, e.g. `linux-x64-gnu`. */
export function platformTriple(): string {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function load(): NativeBinding {
  const triple = platformTriple()
  const packageName = `ferrocache-${triple}`
  const failures: string[] = []
  try {
    return require(packageName) as NativeBinding
  } catch (err) {
    failures.push(`${packageName}: ${(err as Error).message.split('\n')[0]}`)
  }
  // A checkout's own build, beside dist/ (bundled into an ES module there is no __dirname,
  // nor a checkout).
  if (typeof __dirname === 'string') {
    const localFile = join(__dirname, '..', 'native', `ferrocache.${triple}.node`)
    if (existsSync(localFile)) return require(localFile) as NativeBinding
    failures.push(`${localFile}: not found`)
  }
  const err = new Error(
    `ferrocache has no native binary for this platform (${triple}).\n` +
      `Looked for the package "${packageName}" and a local build:\n  ${failures.join('\n  ')}\n` +
      `Install the platform package (npm install ${packageName}), or build from source with a ` +
      `Rust toolchain: in a checkout of ferrocache run "npm install" (it runs "napi build").`,
  )
  // the ferrocached command prints such an error as it is, without a stack
  throw Object.assign(err, { code: 'FERROCACHE_NO_BINARY' })
}

/**
 * The loaded native binding. It is the package's engine room, not part of its stable
 * API: use `Cache`, `createServer` and `Client`.
 * @internal
 */
export const native: NativeBinding = load()
