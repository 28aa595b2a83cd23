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

test.run()
