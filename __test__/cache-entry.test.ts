// The package's entry points: CommonJS (`require`) and ESM (`import`) both load the built
// dist/ and share the same API; types come from dist/index.d.ts.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

const ROOT = join(__dirname, '..')
const DIST = join(ROOT, 'dist')

/**
 * Checks dist/ as built; it does not build it. A rebuild here (`npm run build:ts` when a
 * source was newer) emptied dist/ for ~10 s under load, and the other uvu process of
 * `npm run test:node` runs ferrocached from dist/: its server tests failed meanwhile
 * ('dist/cli/main.js is missing'). A dist/ older than src/ is tested as it is, as the
 * server tests do, with a note naming the newer source.
 */
let noted = false
function requireBuilt(): void {
  const entry = join(DIST, 'index.mjs')
  if (!existsSync(entry)) throw new Error('dist/index.mjs is missing: run "npm run build" before this test')
  if (noted) return
  noted = true
  const src = join(ROOT, 'src')
  const built = statSync(entry).mtimeMs
  const newer = readdirSync(src, { recursive: true, encoding: 'utf8' }).find((f) => f.endsWith('.ts') && statSync(join(src, f)).mtimeMs > built)
  if (newer !== undefined) process.stderr.write(`note: src/${newer} is newer than dist/: testing dist/ as built (npm run build:ts rebuilds it)\n`)
}

function runNode(args: string[]): string {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
  assert.is(r.status, 0, `node ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout.trim()
}

const PROGRAM = `
  const c = new Cache({ memoryLimit: '8mb', encoding: 'utf8' })
  c.setSync('k', 'v')
  const v = await c.get('k')
  c.close()
  console.log(JSON.stringify({ v, cache: typeof Cache, triple: typeof platformTriple }))
`

test('require() of the package loads the CommonJS build', () => {
  requireBuilt()
  const out = runNode([
    '-e',
    `const { Cache, platformTriple } = require(${JSON.stringify(ROOT)});
     (async () => { ${PROGRAM} })().catch((e) => { console.error(e); process.exit(1) })`,
  ])
  assert.equal(JSON.parse(out), { v: 'v', cache: 'function', triple: 'function' })
})

test('import() of dist/index.mjs and of the package name loads the ESM entry', () => {
  requireBuilt()
  const mjs = JSON.stringify(join(DIST, 'index.mjs'))
  const out = runNode(['--input-type=module', '-e', `const { Cache, platformTriple } = await import(${mjs}); ${PROGRAM}`])
  assert.equal(JSON.parse(out), { v: 'v', cache: 'function', triple: 'function' })
  // Self-reference through the package.json "exports" map.
  const byName = runNode(['--input-type=module', '-e', `const { Cache, platformTriple } = await import('ferrocache'); ${PROGRAM}`])
  assert.equal(JSON.parse(byName), { v: 'v', cache: 'function', triple: 'function' })
})

test('caches work in worker threads, each thread with its own engines', () => {
  requireBuilt()
  // Every worker stores its own value under the same key in its own cache, then reads it
  // back many times while the others do the same.
  const out = runNode([
    '-e',
    `const { Worker } = require('node:worker_threads')
     const { Cache } = require(${JSON.stringify(ROOT)})
     const main = new Cache({ encoding: 'utf8' })
     main.setSync('who', 'main')
     const code = \`
       const { parentPort, workerData } = require('node:worker_threads')
       const { Cache } = require(workerData.root)
       const c = new Cache({ encoding: 'utf8' })
       let ok = 0
       for (let i = 0; i < 20000; i++) { c.setSync('who', 'worker' + workerData.n + ':' + i); if (c.getSync('who') === 'worker' + workerData.n + ':' + i) ok++ }
       c.close()
       parentPort.postMessage(ok)\`
     const runs = [1, 2, 3].map((n) => new Promise((resolve, reject) => {
       const w = new Worker(code, { eval: true, workerData: { root: ${JSON.stringify(ROOT)}, n } })
       w.once('message', resolve)
       w.once('error', reject)
     }))
     Promise.all(runs).then((oks) => console.log(JSON.stringify({ oks, main: main.getSync('who') })))`,
  ])
  assert.equal(JSON.parse(out), { oks: [20000, 20000, 20000], main: 'main' })
})

test('the declaration files describe the Cache', () => {
  requireBuilt()
  assert.ok(existsSync(join(DIST, 'index.d.ts')))
  assert.ok(existsSync(join(DIST, 'cache.d.ts')))
})

test.run()
