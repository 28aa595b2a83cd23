// What `npm install ferrocache` gets: the root tarball (TypeScript output, the CLI) and
// the linux-x64-gnu platform tarball (the .node), installed into an empty project far from
// this checkout and from Rust. The root package is staged in a temporary directory (fresh
// tsc output, nothing from the shared dist/), so packing never runs the build scripts and
// never leaves files in npm/.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as TS from 'typescript'
import { setUp, tearDown } from './helpers/guard'
import { typecheck, type ConsumerConfig } from './helpers/typecheck'
import { freePort, spawnOwned, stopChild, waitForPort } from './helpers/servers'

const ROOT = join(__dirname, '..')
const TRIPLE = 'linux-x64-gnu'
const BINARY = join(ROOT, 'native', `ferrocache.${TRIPLE}.node`)
const supported = process.platform === 'linux' && process.arch === 'x64' && existsSync(BINARY)

const work = mkdtempSync(join(tmpdir(), 'ferrocache-pack-'))
// Neither the checkout's node_modules nor a tsx/ts-node hook may leak into the children.
const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', NODE_PATH: '' }

function sh(cmd: string, args: string[], cwd: string, timeout = 60_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`)
  }
  return r
}

interface Ran {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * `spawnSync` that runs alongside: npm installs and napi's prepublish (seven `npm pack`s) take
 * most of this file's time, and each can run while the set-up compiles. The result is
 * marked handled, so a failure surfaces in the test that awaits it.
 */
function spawnAlong(cmd: string, args: string[], cwd: string, timeout: number): Promise<Ran> {
  const ran = new Promise<Ran>((resolve, reject) => {
    const child = spawnOwned(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}): ${err.message}`))
    })
    child.on('close', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
  ran.catch(() => undefined)
  return ran
}

/** `sh`, alongside: rejects unless the command exits 0. */
async function shAlong(cmd: string, args: string[], cwd: string, timeout = 60_000): Promise<Ran> {
  const r = await spawnAlong(cmd, args, cwd, timeout)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`)
  return r
}

interface PackResult {
  filename: string
  size: number
  unpackedSize: number
  files: { path: string }[]
}

function pack(dir: string): PackResult {
  const r = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], dir)
  const out = JSON.parse(r.stdout) as PackResult[]
  return out[0]
}

function emptyProject(name: string): string {
  const dir = join(work, name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }))
  return dir
}

let rootTgz = ''
let platformTgz = ''
let rootPack: PackResult | undefined
/** napi prepublish in a release checkout with every binary, and with the linux-x64-gnu one missing. */
let prepublished: Promise<[Ran, Ran]> | undefined
/** The two empty projects' installs: both tarballs, and the root one alone. */
let installed: Promise<Ran> | undefined
let installedWithoutBinary: Promise<Ran> | undefined

// setUp: a failure here fails every test with its error (a bare test.before would skip them silently)
setUp(test, setup)
function setup(): void {
  if (!supported) return
  prepublished = prepublish()
  // Stage the root package: its package.json decides the tarball's contents (`files`).
  const stage = join(work, 'root')
  mkdirSync(join(stage, 'native'), { recursive: true })
  for (const f of ['package.json', 'README.md', 'LICENSE']) copyFileSync(join(ROOT, f), join(stage, f))
  cpSync(join(ROOT, 'bin'), join(stage, 'bin'), { recursive: true })
  copyFileSync(join(ROOT, 'native', 'index.d.ts'), join(stage, 'native', 'index.d.ts'))
  cpSync(join(ROOT, 'scripts'), join(stage, 'scripts'), { recursive: true })
  // Decoys: none of these may reach the tarball.
  copyFileSync(BINARY, join(stage, 'native', `ferrocache.${TRIPLE}.node`))
  mkdirSync(join(stage, 'src'))
  writeFileSync(join(stage, 'src', 'decoy.ts'), 'export {}\n')
  sh(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json'), '--outDir', join(stage, 'dist')], ROOT)
  // The ESM entry is written by loading the CJS build, which needs pino: lend it the
  // checkout's node_modules (npm pack never includes node_modules).
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir')
  sh(process.execPath, [join(stage, 'scripts', 'write-esm-entry.js')], stage)
  rootPack = pack(stage)
  rootTgz = join(work, rootPack.filename)

  const platform = join(work, TRIPLE)
  cpSync(join(ROOT, 'npm', TRIPLE), platform, { recursive: true })
  copyFileSync(BINARY, join(platform, `ferrocache.${TRIPLE}.node`))
  platformTgz = join(work, pack(platform).filename)
  installed = shAlong('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', rootTgz, platformTgz], emptyProject('consumer'), 90_000)
  installedWithoutBinary = shAlong('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', rootTgz], emptyProject('no-binary'), 90_000)
}

/**
 * Starts napi prepublish --dry-run in two scratch release checkouts: package.json, npm/ and
 * a binary per target (the linux one copied under every name: prepublish checks presence
 * and manifests, not machine code), and the same without the linux-x64-gnu binary.
 */
function prepublish(): Promise<[Ran, Ran]> {
  const napi = join(ROOT, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const git = ['-c', 'user.email=ci@localhost', '-c', 'user.name=ci']
  const runs = ['prepublish', 'prepublish-missing'].map((name) => {
    const dir = join(work, name)
    mkdirSync(dir)
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
    cpSync(join(ROOT, 'npm'), join(dir, 'npm'), { recursive: true })
    for (const platform of readdirSync(join(dir, 'npm'))) {
      if (name === 'prepublish-missing' && platform === TRIPLE) continue
      copyFileSync(BINARY, join(dir, 'npm', platform, `ferrocache.${platform}.node`))
    }
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
    sh('git', ['init', '-q'], dir)
    sh('git', [...git, 'add', 'package.json'], dir)
    sh('git', [...git, 'commit', '-qm', 'v0.1.0'], dir)
    return spawnAlong(process.execPath, [napi, 'prepublish', '-t', 'npm', '--dry-run', '--skip-optional-publish'], dir, 60_000)
  })
  const both = Promise.all(runs) as Promise<[Ran, Ran]>
  both.catch(() => undefined)
  return both
}

tearDown(test, async () => {
  // what runs alongside ends first (each is bounded by its timeout)
  await Promise.allSettled([prepublished, installed, installedWithoutBinary])
  rmSync(work, { recursive: true, force: true })
})

test('the root tarball holds the JS build, the CLI and the types, nothing else', () => {
  if (!supported) return
  const pk = rootPack as PackResult
  const paths = pk.files.map((f) => f.path)
  for (const need of ['package.json', 'README.md', 'LICENSE', 'bin/ferrocached.js', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/adapters/keyv.js', 'dist/adapters/keyv.mjs', 'dist/adapters/keyv.d.ts', 'dist/adapters/keyv.d.mts', 'native/index.d.ts']) {
    assert.ok(paths.includes(need), `missing ${need}`)
  }
  const stray = paths.filter(
    (p) => /^(target|crates|src|__test__|bench|scripts|npm|docs)\//.test(p) || p.endsWith('.node') || p.endsWith('.tgz') || /(^|\/)[^/]+\.test\.[jt]s$/.test(p),
  )
  assert.equal(stray, [], 'files that do not belong in the tarball')
  console.log(
    `    root tarball: ${pk.files.length} files, ${(pk.size / 1024).toFixed(1)} KiB packed, ${(pk.unpackedSize / 1024).toFixed(1)} KiB unpacked`,
  )
  // Generous bound: the JS build is well under a megabyte; a binary or a target/ would not be.
  assert.ok(pk.size < 1024 * 1024, `root tarball is ${pk.size} bytes`)
})

test('the root package depends, optionally and at its own version, on every platform package', () => {
  const manifest = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  const root = manifest(join(ROOT, 'package.json'))
  const targets = (root.napi as { targets: string[] }).targets
  const platformNames = readdirSync(join(ROOT, 'npm')).map((d) => manifest(join(ROOT, 'npm', d, 'package.json')).name as string)
  assert.is(platformNames.length, targets.length, 'one npm/ package per napi target')
  const expected = Object.fromEntries(platformNames.sort().map((n) => [n, root.version]))
  assert.equal(root.optionalDependencies, expected)
})

test('napi prepublish accepts the layout once every target has its binary (dry run)', async () => {
  if (!supported) return
  const [full, missing] = await (prepublished as Promise<[Ran, Ran]>)
  assert.is(full.status, 0, `napi prepublish exited ${full.status}:\n${full.stdout}\n${full.stderr}`)
  assert.is.not(missing.status, 0, 'a target without its binary is refused')
})

/** The project that installed both tarballs (once, in the set-up, for every test that uses it). */
async function consumer(): Promise<string> {
  await (installed as Promise<Ran>)
  return join(work, 'consumer')
}

test('installed from the tarballs: require, import, a Cache, and npx ferrocached', async () => {
  if (!supported) return
  const proj = await consumer()
  assert.ok(!existsSync(join(proj, 'node_modules', 'ferrocache', 'native', `ferrocache.${TRIPLE}.node`)))

  const cjs = sh(
    process.execPath,
    [
      '-e',
      `const { Cache, platformTriple } = require('ferrocache')
       const c = new Cache({ encoding: 'utf8' })
       c.setSync('k', 'v1')
       c.get('k').then((v) => { console.log(JSON.stringify({ v, t: platformTriple(), from: require.resolve('ferrocache') })); c.close() })`,
    ],
    proj,
  )
  const seen = JSON.parse(cjs.stdout) as { v: string; t: string; from: string }
  assert.is(seen.v, 'v1')
  assert.is(seen.t, TRIPLE)
  assert.ok(seen.from.startsWith(proj), `resolved from ${seen.from}`)

  const esm = sh(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import('ferrocache')
       const c = new m.Cache()
       await c.set('k', 'esm')
       console.log(String(await c.get('k')), typeof m.default.Cache)
       c.close()`,
    ],
    proj,
  )
  assert.is(esm.stdout.trim(), 'esm function')

  // The ./keyv entry, both ways.
  const keyv = sh(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module'
       const { KeyvFerrocache } = createRequire(import.meta.url)('ferrocache/keyv')
       const esm = await import('ferrocache/keyv')
       const a = new esm.default()
       await a.set('k', 'v', 1000)
       console.log([typeof KeyvFerrocache, esm.KeyvFerrocache === esm.default, await a.get('k')].join(' '))
       await a.disconnect()`,
    ],
    proj,
  )
  assert.is(keyv.stdout.trim(), 'function true v')

  const port = await freePort()
  // npx runs the bin in a child of its own; a process group lets us stop both by npx's PID.
  const child = spawnOwned('npx', ['--no-install', 'ferrocached', '--port', String(port)], { cwd: proj, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM')
      } catch {
        /* already gone */
      }
    }
    await stopChild(child)
  }
  try {
    await waitForPort(port, 20_000, child).catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr}`)
    })
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1')
      let got = ''
      const timer = setTimeout(() => {
        s.destroy()
        reject(new Error(`no full reply within 5 s: ${JSON.stringify(got)}`))
      }, 5_000)
      s.on('data', (d: Buffer) => {
        got += d.toString()
        if (got.endsWith('END\r\n')) {
          clearTimeout(timer)
          s.end()
          resolve(got)
        }
      })
      s.on('error', reject)
      s.write('set greeting 0 0 5\r\nhello\r\nget greeting\r\n')
    })
    assert.is(reply, 'STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n')
  } finally {
    await stop()
  }
})

test('TypeScript consumers compile against the shipped types under each common configuration, skipLibCheck off', async () => {
  if (!supported) return
  const proj = await consumer()
  const files: Record<string, string> = {
    'consumer.ts': CONSUMER,
    'consumer-strict.ts': STRICT_CONSUMER,
    'consumer-default.ts': DEFAULT_IMPORT_CONSUMER,
    'consumer-pino.ts': PINO_CONSUMER,
    // An ES module gets the ESM entries' types: ferrocache/keyv's default export is the
    // class there, as in keyv.mjs (README: "also the default export").
    'consumer-esm.mts': `import KeyvFerrocache, { KeyvFerrocache as Named } from 'ferrocache/keyv'
import ferrocache, { Cache } from 'ferrocache'
const adapter: Named = new KeyvFerrocache(new Cache())
export const cache: Cache = new ferrocache.Cache()
export { adapter }
`,
    // A CommonJS file under verbatimModuleSyntax: import = require, and type-only imports.
    'consumer-cjs.cts': `import ferrocache = require('ferrocache')
import type { CacheLike, ServerOptions } from 'ferrocache'
const cache: CacheLike<'utf8'> = new ferrocache.Cache({ encoding: 'utf8' })
const options: ServerOptions = { cache: new ferrocache.Cache(), port: 0 }
export = { cache, server: ferrocache.createServer(options) }
`,
  }
  for (const [name, text] of Object.entries(files)) writeFileSync(join(proj, name), text)
  // @types/node from this checkout (the consumer's own, in a real project).
  const node = { typeRoots: [join(ROOT, 'node_modules', '@types')], types: ['node'] }
  const strict = { strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true }
  // Without `lib`, TypeScript adds the DOM's types; Node projects often leave them out
  // (`lib: ['es2022']`), so two configurations do.
  const configs: ConsumerConfig[] = [
    // the set-up that broke on default imports of node:net and on pino's own types
    { name: 'commonjs + node10, no esModuleInterop, strict', files: ['consumer.ts', 'consumer-strict.ts'], compilerOptions: { ...node, ...strict, module: 'commonjs', moduleResolution: 'node10', target: 'es2020', lib: ['es2020'] } },
    { name: 'commonjs + node10, esModuleInterop, not strict', files: ['consumer.ts', 'consumer-default.ts', 'consumer-pino.ts'], compilerOptions: { ...node, module: 'commonjs', moduleResolution: 'node10', target: 'es2020', esModuleInterop: true } },
    { name: 'node16 + node16, no esModuleInterop, strict', files: ['consumer.ts', 'consumer-strict.ts', 'consumer-esm.mts'], compilerOptions: { ...node, ...strict, module: 'node16', moduleResolution: 'node16', esModuleInterop: false, lib: ['es2022'] } },
    { name: 'nodenext + nodenext, verbatimModuleSyntax, strict', files: ['consumer-esm.mts', 'consumer-cjs.cts'], compilerOptions: { ...node, ...strict, module: 'nodenext', moduleResolution: 'nodenext', verbatimModuleSyntax: true } },
    { name: 'esnext + bundler, verbatimModuleSyntax, no esModuleInterop, strict', files: ['consumer.ts', 'consumer-strict.ts', 'consumer-default.ts'], compilerOptions: { ...node, ...strict, module: 'esnext', moduleResolution: 'bundler', target: 'es2022', verbatimModuleSyntax: true, esModuleInterop: false } },
  ]
  const ts = require(join(ROOT, 'node_modules', 'typescript')) as typeof TS
  // module: preserve (TypeScript 5.4 and later)
  if ('Preserve' in ts.ModuleKind) {
    configs.push({ name: 'preserve + bundler, strict', files: ['consumer.ts', 'consumer-strict.ts', 'consumer-default.ts'], compilerOptions: { ...node, ...strict, module: 'preserve', moduleResolution: 'bundler', target: 'es2022' } })
  }
  const started = Date.now()
  const cpu = process.cpuUsage()
  const results = typecheck(ts, proj, 'ferrocache', configs)
  const { user, system } = process.cpuUsage(cpu)
  console.log(`    ${configs.length} consumer configurations type-checked in ${Date.now() - started} ms, ${Math.round((user + system) / 1000)} ms CPU (TypeScript ${ts.version})`)
  for (const config of configs) {
    const r = results.get(config.name)
    assert.ok(r !== undefined && r.packageFiles > 0, `${config.name}: the program never loaded ferrocache's types`)
    assert.is(r.errors, '', `${config.name}:\n${r.errors}`)
  }
})

test('one API under require and import: named and default imports, instanceof across the entries', async () => {
  if (!supported) return
  const proj = await consumer()
  // Node's own ES modules: named imports, and a Cache made through require() (the
  // CommonJS entry) served by createServer from the ESM entry and read by its Client.
  writeFileSync(
    join(proj, 'across.mjs'),
    `import { createRequire } from 'node:module'
import ferrocache, { Cache, Client, createServer } from 'ferrocache'
import KeyvDefault, { KeyvFerrocache } from 'ferrocache/keyv'
const require = createRequire(import.meta.url)
const cjs = require('ferrocache')
const checks = {
  same: cjs.Cache === Cache && cjs.createServer === createServer && ferrocache.Cache === Cache,
  instanceOf: new cjs.Cache() instanceof Cache && new Cache() instanceof cjs.Cache,
  keyv: require('ferrocache/keyv').KeyvFerrocache === KeyvFerrocache && KeyvDefault === KeyvFerrocache,
}
const cache = new cjs.Cache({ encoding: 'utf8' })
cache.setSync('k', 'across')
const server = createServer({ cache, port: 0, host: '127.0.0.1' })
const { port } = await server.listen()
const client = new Client({ servers: ['127.0.0.1:' + port], encoding: 'utf8' })
try {
  checks.served = await client.get('k')
} finally {
  await client.close()
  await server.close()
  cache.close()
}
console.log(JSON.stringify(checks))
`,
  )
  const across = JSON.parse(sh(process.execPath, ['across.mjs'], proj, 30_000).stdout) as Record<string, unknown>
  assert.equal(across, { same: true, instanceOf: true, keyv: true, served: 'across' })

  // What tsc emits for a CommonJS project with esModuleInterop, run by node: the default
  // import reads exports.default, which the types promise is the module.
  const ts = require(join(ROOT, 'node_modules', 'typescript')) as typeof TS
  const emitted = ts.transpileModule(DEFAULT_IMPORT_CONSUMER, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  }).outputText
  writeFileSync(join(proj, 'default-import.cjs'), `${emitted}\nconsole.log(JSON.stringify(report()))\n`)
  const seen = JSON.parse(sh(process.execPath, ['default-import.cjs'], proj, 30_000).stdout) as Record<string, unknown>
  assert.equal(seen, { value: 'default', same: true, keyv: 'function', keys: false })
})

test('bundled by esbuild, CommonJS and ES module output, from a TypeScript file importing ferrocache', async () => {
  if (!supported) return
  const proj = await consumer()
  writeFileSync(join(proj, 'bundled.ts'), BUNDLED_APP)
  const esbuild = require(join(ROOT, 'node_modules', 'esbuild')) as typeof import('esbuild')
  const common = { entryPoints: [join(proj, 'bundled.ts')], bundle: true, platform: 'node', target: 'node20', logLevel: 'silent' } as const
  // ES module output: esbuild's usual shim for the CommonJS inside (pino's, ours).
  const banner = { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" }
  await esbuild.build({ ...common, format: 'cjs', outfile: join(proj, 'out', 'bundled.cjs') })
  await esbuild.build({ ...common, format: 'esm', banner, outfile: join(proj, 'out', 'bundled.mjs') })
  // The engine comes from the platform package in node_modules at run time.
  for (const out of ['bundled.cjs', 'bundled.mjs']) {
    const r = spawnSync(process.execPath, [join('out', out)], { cwd: proj, env, encoding: 'utf8', timeout: 30_000 })
    assert.is(r.status, 0, `${out}: ${r.stderr}`)
    assert.is(r.stdout.trim(), 'bundled served', out)
  }
})

test('without the platform package the loader says what is missing and how to build', async () => {
  if (!supported) return
  await (installedWithoutBinary as Promise<Ran>)
  const proj = join(work, 'no-binary')
  const r = spawnSync(process.execPath, ['-e', `require('ferrocache')`], { cwd: proj, env, encoding: 'utf8', timeout: 20_000 })
  assert.is.not(r.status, 0)
  assert.match(r.stderr, `no native binary for this platform (${TRIPLE})`)
  assert.match(r.stderr, `"ferrocache-${TRIPLE}"`)
  assert.match(r.stderr, 'npm install ferrocache-linux-x64-gnu')
  assert.match(r.stderr, 'build from source')
  assert.match(r.stderr, 'Rust toolchain')
  // the command: the same message (and its code for programs), no stack trace over it
  const code = spawnSync(process.execPath, ['-e', `try { require('ferrocache') } catch (e) { console.log(e.code) }`], { cwd: proj, env, encoding: 'utf8', timeout: 20_000 })
  assert.is(code.stdout.trim(), 'FERROCACHE_NO_BINARY')
  const cli = spawnSync(process.execPath, [join(proj, 'node_modules', '.bin', 'ferrocached'), '--help'], { cwd: proj, env, encoding: 'utf8', timeout: 20_000 })
  assert.is(cli.status, 1)
  assert.ok(cli.stderr.startsWith(`ferrocached: ferrocache has no native binary for this platform (${TRIPLE}).\n`), cli.stderr)
  assert.not.match(cli.stderr, /^\s+at /m, 'no stack trace')
})

test.run()

/** A TypeScript user's file: compiles only if the shipped types say what the README says. */
const STRICT_CONSUMER = `import { Cache, Client, type CacheLike, type CasEntry, type CacheStats } from 'ferrocache'
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const is = <T extends true>(): T | undefined => undefined
export async function embedded(): Promise<void> {
  const cache = new Cache({ memoryLimit: '64mb' })
  const buf = await cache.get('k')
  is<Equal<typeof buf, Buffer | undefined>>()
  const text = await cache.get('k', { encoding: 'utf8' })
  is<Equal<typeof text, string | undefined>>()
  const entry = await cache.gets('k')
  is<Equal<typeof entry, CasEntry<Buffer> | undefined>>()
  if (entry) is<Equal<[typeof entry.cas, typeof entry.flags], [bigint, number]>>()
  const textEntry = await cache.gets('k', { encoding: 'utf8' })
  is<Equal<typeof textEntry, CasEntry<string> | undefined>>()
  is<Equal<ReturnType<typeof cache.incrSync>, bigint | undefined>>()
  await cache.incr('n', 2n ** 63n)
  const many = await cache.getMany(['a', 'b'], { encoding: 'utf8' })
  is<Equal<typeof many, Map<string, string>>>()
  const loaded = await cache.fetch('k', async () => 'v', { ttl: 1000, encoding: 'utf8', timeout: 50 })
  is<Equal<typeof loaded, string>>()
  const json = new Cache({ encoding: 'json' })
  await json.set('k', { any: ['json', 1] })
  const parsed = await json.get('k')
  is<Equal<typeof parsed, unknown>>()
  const raw = await json.get('k', { encoding: 'buffer' })
  is<Equal<typeof raw, Buffer | undefined>>()
  const stats = await cache.stats()
  is<Equal<typeof stats, CacheStats>>()
  // @ts-expect-error a key is a string
  await cache.set(1, 'v')
  // @ts-expect-error an object needs encoding: 'json'
  await cache.set('k', { a: 1 })
  // @ts-expect-error a missing await: a Promise is not a value
  const notAwaited: Buffer | undefined = cache.get('k')
  // @ts-expect-error lru-cache's option names are not Cache's
  new Cache({ max: 500 })
  // @ts-expect-error encodings are 'buffer' | 'utf8' | 'json'
  await cache.get('k', { encoding: 'hex' })
  void notAwaited
}
export async function shared(): Promise<void> {
  const use = async (c: CacheLike): Promise<Buffer | undefined> => c.get('k')
  await use(new Cache())
  await use(new Client({ servers: ['127.0.0.1:11211'] }))
  const utf8: CacheLike<'utf8'> = new Client({ servers: ['127.0.0.1:11211'], encoding: 'utf8' })
  const got = await utf8.get('k')
  is<Equal<typeof got, string | undefined>>()
}
`

/** A typical user's file: the three entry points and the public types, in a few typed lines. */
const CONSUMER = `import { Cache, Client, createServer, type CacheLike, type Decoded, type Encoding, type FerrocacheServer, type ServerOptions } from 'ferrocache'
import { KeyvFerrocache } from 'ferrocache/keyv'
/** One function for Cache and Client alike: the interface they share, over any encoding. */
export async function hits<E extends Encoding>(caches: ReadonlyArray<CacheLike<E>>, key: string): Promise<Array<Decoded<E>>> {
  const found: Array<Decoded<E>> = []
  for (const c of caches) {
    const value = await c.get(key)
    if (value !== undefined) found.push(value)
  }
  return found
}
export async function main(): Promise<string[]> {
  const local = new Cache({ encoding: 'utf8', memoryLimit: '16mb' })
  const remote = new Client({ servers: ['127.0.0.1:11211'], encoding: 'utf8' })
  const both: Array<CacheLike<'utf8'>> = [local, remote]
  const options: ServerOptions = { cache: new Cache(), port: 0 }
  const server: FerrocacheServer = createServer(options)
  const { port } = await server.listen()
  const adapter = new KeyvFerrocache(local)
  await adapter.set('port', String(port))
  const found: string[] = await hits(both, 'k')
  await Promise.all([remote.close(), server.close()])
  local.close()
  return found
}
`

/** The module as a default import (CommonJS with esModuleInterop, bundlers); run by node too. */
const DEFAULT_IMPORT_CONSUMER = `import ferrocache from 'ferrocache'
import * as all from 'ferrocache'
import KeyvFerrocache from 'ferrocache/keyv'
export function report(): { value: string | undefined; same: boolean; keyv: string; keys: boolean } {
  const cache = new ferrocache.Cache({ encoding: 'utf8' })
  cache.setSync('k', 'default')
  const value = cache.getSync('k')
  cache.close()
  return { value, same: ferrocache.createServer === all.createServer, keyv: typeof KeyvFerrocache, keys: Object.keys(ferrocache).includes('default') }
}
`

/** pino, our logging dependency, as the logger a user passes (its types need esModuleInterop). */
const PINO_CONSUMER = `import pino from 'pino'
import { createServer, Cache } from 'ferrocache'
export const server = createServer({ logger: pino({ level: 'warn' }) })
export const persisted = new Cache({ dataDir: '/tmp/x', logger: pino() })
`

/** An application bundled with its dependencies (ferrocache and pino inside, the .node not). */
const BUNDLED_APP = `import { Cache, Client, createServer } from 'ferrocache'
async function main(): Promise<void> {
  const cache = new Cache({ encoding: 'utf8' })
  cache.setSync('k', 'bundled')
  const server = createServer({ cache, port: 0, host: '127.0.0.1' })
  const { port } = await server.listen()
  const client = new Client({ servers: ['127.0.0.1:' + port], encoding: 'utf8' })
  try {
    console.log(await client.get('k'), 'served')
  } finally {
    await client.close()
    await server.close()
    cache.close()
  }
}
main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
`
