// A supervisor or a script may stop ferrocached as soon as it logs "listening" (its
// readiness line): that SIGTERM must get the graceful stop (exit 0, the last snapshot),
// not the signal's default action. The handlers used to be installed only after listen()
// resolved, so a SIGTERM sent on the line killed the process in most rounds (exit by
// signal, no snapshot). Runs dist/ (npm run build first).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, freePort, spawnOwned, stopChild, within } from './helpers/servers'
import { askOnce } from './helpers/raw'
import { Cache } from '../src/index'

const ROUNDS = 5

test('a SIGTERM sent the moment "listening" is logged stops gracefully: exit 0, last snapshot written', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'ferrocache-ready-signal-'))
    const port = await freePort()
    const child = spawnOwned(process.execPath, [BIN, '-p', String(port), '--data-dir', dir, '--save', ''], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])))
    let stderr = ''
    let signalled = false
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (!signalled && stderr.includes('"msg":"listening"')) {
        signalled = true
        child.kill('SIGTERM')
      }
    })
    try {
      const [code, signal] = await within(exited, 20_000, `round ${round}: exit after SIGTERM`)
      assert.ok(signalled, `round ${round}: never logged listening\n${stderr}`)
      assert.equal({ code, signal }, { code: 0, signal: null }, `round ${round}\n${stderr}`)
      assert.ok(readdirSync(dir).some((f) => f.endsWith('.fcs')), `round ${round}: no snapshot written at stop: ${readdirSync(dir).join(', ')}`)
    } finally {
      await stopChild(child, 'SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  }
})

// memcached sets its SIGHUP handler first thing. ferrocached set it after the snapshot load,
// so a SIGHUP during a long load (a closed terminal, a config-reload script) killed it.
test('a SIGHUP during the snapshot load at start-up is ignored: the load finishes and it serves; a SIGTERM or SIGUSR1 then stops it gracefully', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-hup-load-'))
  // many small items: the load's time goes with the count, the snapshot writes' (at
  // close and at each graceful stop) with the bytes
  const ITEMS = 600_000
  const VALUE = 'v'.repeat(10)
  let child: ReturnType<typeof spawnOwned> | undefined
  try {
    const cache = new Cache({ dataDir: dir, save: '', memoryLimit: '512mb' })
    const value = Buffer.from(VALUE)
    for (let i = 0; i < ITEMS; i += 10_000) {
      cache.setManySync(Array.from({ length: 10_000 }, (_, j) => [`k${i + j}`, value] as [string, Buffer]))
    }
    cache.close() // writes the snapshot
    const port = await freePort()
    child = spawnOwned(process.execPath, [BIN, '-p', String(port), '-m', '512', '--data-dir', dir, '--save', ''], { stdio: ['ignore', 'ignore', 'pipe'] })
    const c = child
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => c.once('exit', (code, signal) => resolve([code, signal])))
    let stderr = ''
    let hupped = false
    const listening = new Promise<void>((resolve) => {
      c.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString()
        if (!hupped && stderr.includes('"msg":"loading the snapshot"')) {
          hupped = true
          c.kill('SIGHUP')
        }
        if (stderr.includes('"msg":"listening"')) resolve()
      })
    })
    const first = await within(Promise.race([listening.then(() => 'listening'), exited.then(([code, signal]) => `exit ${code} ${signal}`)]), 20_000, 'start after SIGHUP')
    assert.ok(hupped, `never logged the load\n${stderr}`)
    assert.is(first, 'listening', stderr)
    assert.match(stderr, /"items":600000[,}][^\n]*"msg":"snapshot loaded"/)
    assert.is((await askOnce(port, Buffer.from(`get k${ITEMS - 1}\r\n`))).reply, `VALUE k${ITEMS - 1} 0 ${VALUE.length}\r\n${VALUE}\r\nEND\r\n`)
    // no graceful stop's snapshot to write: the next loads read the same one
    await stopChild(c, 'SIGKILL')
    // SIGTERM and SIGUSR1 during the load: the graceful stop once it is done (exit 0), as
    // memcached's handlers set first thing. Node's defaults took them before the stop's
    // handlers went in: killed by SIGTERM; SIGUSR1 opened the inspector on 127.0.0.1:9229
    // and the server went on serving
    for (const signal of ['SIGTERM', 'SIGUSR1'] as const) {
      const p = await freePort()
      const d = spawnOwned(process.execPath, [BIN, '-p', String(p), '-m', '512', '--data-dir', dir, '--save', ''], { stdio: ['ignore', 'ignore', 'pipe'] })
      child = d
      const done = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => d.once('exit', (code, sig) => resolve([code, sig])))
      let err = ''
      let sent = false
      d.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString()
        if (!sent && err.includes('"msg":"loading the snapshot"')) {
          sent = true
          d.kill(signal)
        }
      })
      const [code, sig] = await within(done, 15_000, `exit after ${signal}`)
      assert.ok(sent, `${signal}: never logged the load\n${err}`)
      assert.not.match(err, /Debugger listening/, `${signal} opened the inspector`)
      assert.equal({ code, sig }, { code: 0, sig: null }, `${signal} during the load\n${err}`)
      assert.match(err, new RegExp(`"signal":"${signal}","msg":"stopping`))
    }
  } finally {
    if (child) await stopChild(child, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
