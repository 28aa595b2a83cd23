// `npm run bench [-- <suite>...]`: runs the named benchmark suites, or every suite.
// A suite is a module in bench/ exporting an async runner; to add one, add a line below.
//   npm run bench -- embedded    Cache vs lru-cache vs Map (bench/embedded.ts)
//   npm run bench -- server      ferrocached vs memcached (bench/server.ts)
//   npm run bench -- persistence snapshot/load time, get latency during snapshots (bench/persistence.ts)
//   npm run bench -- client      remote Client vs memcslap (bench/client.ts)
//   npm run bench -- soak        minutes of load with hostile clients, every write read back
//                                (bench/soak.ts; only when named, like `npm run soak`)
//   npm run bench -- replication primary ops/s with a replica vs none, replica lag (bench/replication.ts)
import { existsSync } from 'node:fs'
import { join } from 'node:path'

type Runner = () => Promise<void>

/** Suites that run only when named (long, and a check rather than a measurement). */
const ONLY_WHEN_NAMED = new Set(['soak'])

// require(), not import(): the benches run under tsx's CommonJS hook (-r tsx/cjs), which
// dynamic import() would bypass; a suite's module is only loaded when it runs.
const SUITES: Record<string, { file: string; load: () => Runner }> = {
  embedded: { file: 'embedded.ts', load: () => (require('./embedded') as typeof import('./embedded')).runEmbeddedBench },
  server: { file: 'server.ts', load: () => (require('./server') as typeof import('./server')).runServerBench },
  persistence: {
    file: 'persistence.ts',
    load: () => (require('./persistence') as typeof import('./persistence')).runPersistenceBench,
  },
  client: { file: 'client.ts', load: () => (require('./client') as typeof import('./client')).runClientBench },
  soak: { file: 'soak.ts', load: () => (require('./soak') as typeof import('./soak')).runSoakBench },
  replication: {
    file: 'replication.ts',
    load: () => (require('./replication') as typeof import('./replication')).runReplicationBench,
  },
}

async function main(): Promise<number> {
  const asked = process.argv.slice(2)
  const unknown = asked.filter((n) => !(n in SUITES))
  if (unknown.length) {
    console.error(`unknown benchmark suite(s): ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`)
    return 2
  }
  const names = asked.length
    ? asked
    : Object.keys(SUITES).filter((n) => !ONLY_WHEN_NAMED.has(n) && existsSync(join(__dirname, SUITES[n].file)))
  let failed = 0
  for (const name of names) {
    console.log(`\n=== bench: ${name} ===`)
    try {
      await SUITES[name].load()()
    } catch (err) {
      failed++
      console.error(`bench ${name} failed: ${(err as Error).stack ?? err}`)
    }
  }
  return failed ? 1 : 0
}

main().then((code) => process.exit(code))
