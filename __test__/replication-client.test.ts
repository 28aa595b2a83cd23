// Client({ readFrom: 'replica' }): reads go to a live replica of the key's server, writes to
// the server; with the replica gone, reads fall back to the server.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src/client'
import { startFerrocached, sleep, type Running } from './helpers/servers'
import { tearDown } from './helpers/guard'

const started: Running[] = []
tearDown(test, async () => {
  await Promise.all(started.map((r) => r.stop()))
})

test('readFrom replica reads the replica, writes the primary, falls back when the replica dies', async () => {
  const primary = await startFerrocached([])
  started.push(primary)
  // writable, so a key can exist on the replica only: that tells where a read went
  const replica = await startFerrocached(['--replica-of', `127.0.0.1:${primary.port}`, '--replica-writable'])
  started.push(replica)
  const server = { host: '127.0.0.1', port: primary.port, replicas: [`127.0.0.1:${replica.port}`] }
  const viaReplica = new Client({ servers: [server], readFrom: 'replica', encoding: 'utf8', removeAfter: 1, retry: 10 })
  const viaPrimary = new Client({ servers: [server], encoding: 'utf8' })
  const onReplica = new Client({ servers: [`127.0.0.1:${replica.port}`], encoding: 'utf8' })
  try {
    assert.ok(await viaReplica.set('shared', 'from-primary'))
    let seen: string | undefined
    // the replica links up and syncs after its port opens: seconds on a busy machine
    for (const deadline = Date.now() + 15_000; seen === undefined && Date.now() < deadline; ) {
      seen = await viaReplica.get('shared')
      if (seen === undefined) await sleep(20)
    }
    assert.is(seen, 'from-primary')
    assert.ok(await onReplica.set('only-on-replica', 'r'))
    assert.is(await viaReplica.get('only-on-replica'), 'r')
    assert.equal([...(await viaReplica.getMany(['only-on-replica', 'shared']))].sort(), [['only-on-replica', 'r'], ['shared', 'from-primary']])
    assert.is(await viaPrimary.get('only-on-replica'), undefined)

    await replica.stop()
    let fellBack: string | undefined
    for (const deadline = Date.now() + 15_000; fellBack === undefined && Date.now() < deadline; ) {
      fellBack = await viaReplica.get('shared').catch(() => undefined)
      if (fellBack === undefined) await sleep(20)
    }
    assert.is(fellBack, 'from-primary')
    assert.is(await viaReplica.get('only-on-replica'), undefined)
  } finally {
    await Promise.all([viaReplica.close(), viaPrimary.close(), onReplica.close()])
  }
})

test('readFrom is checked', () => {
  assert.throws(() => new Client({ servers: ['127.0.0.1:1'], readFrom: 'any' as 'replica' }), /readFrom/)
  assert.throws(() => new Client({ servers: [{ host: 'h', replicas: 'x' as unknown as string[] }] }), /replicas/)
})

test.run()
