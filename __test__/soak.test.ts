// A short soak (bench/soak.ts, `npm run soak` runs the long one): 15 s of mixed load with
// values from 1 byte to 1 MB on ferrocached, hostile clients alongside (garbage, commands
// cut short, absurd lengths, clients that never read, hang-ups mid-value, short and held
// connections), snapshots during the run and a replica when the build has replication;
// then every acknowledged write is read back, the replica compared, and the primary
// restarted from its snapshot. Any lost, wrong or resurrected write fails it. The item
// memory holds every key here (the long soak, with more keys than memory, checks what
// eviction explains and that deletes after an eviction still reach the replica).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { runSoak, summarize } from '../bench/soak'
import { DURABLE_VALUE, durableKey, mixedKey, Tracker, verify } from '../bench/soak-load'
import { startServer } from '../bench/soak-proc'

test("the soak's read-back catches a lost, a stale, a resurrected and a corrupted write", async () => {
  const server = await startServer('checker', ['-m', '16'])
  const client = new Client({ servers: [`127.0.0.1:${server.port}`] })
  try {
    const tracker = new Tracker({ durableKeys: 4, mixedKeys: 4, writers: 1 })
    await tracker.fillDurable(client)
    for (let i = 0; i < 4; i++) await tracker.set(client, mixedKey(i), 10 + i, 0)
    await tracker.delete(client, mixedKey(3))
    let v = await verify(tracker, client)
    assert.equal([v.present, v.absentAsDeleted, v.missingDurable, v.wrongValue], [7, 1, 0, 0])

    await client.delete(durableKey(0)) // lost behind the tracker's back
    tracker.keys.get(durableKey(1))!.version++ // acknowledged, but the server has the older value
    await client.set(mixedKey(3), 'back') // a deleted key returns
    await client.set(mixedKey(0), Buffer.alloc(10)) // same length, other bytes
    v = await verify(tracker, client)
    assert.equal([v.missingDurable, v.wrongValue, v.resurrected, v.present], [1, 2, 1, 4])
    assert.is(DURABLE_VALUE, tracker.keys.get(durableKey(2))!.size)
  } finally {
    await client.close()
    await server.stop()
  }
})

test('a short soak loses no acknowledged write and the server survives its hostile clients', async () => {
  const r = await runSoak({
    seconds: 15,
    memoryMb: 64,
    durableKeys: 500,
    mixedKeys: 3000,
    writers: 6,
    hold: 100,
    snapshotEveryMs: 5000,
    replica: 'auto',
    restart: true,
    log: () => undefined,
  })
  const summary = summarize(r)
  assert.equal(r.failures, [], summary)
  // the run did what it claims: load of every size class, every kind of misbehaviour
  assert.ok(r.load.sets > 200 && r.load.sizes.upTo100 > 0 && r.load.sizes.upTo64k > 0, summary)
  assert.ok(r.load.deletes > 0 && r.load.gets > 0, summary)
  const h = r.hostile
  assert.ok(h.garbageLines > 0 && h.truncated > 0 && h.hugeLengths > 0 && h.midValueHangups > 0, summary)
  assert.ok(h.nonReaders > 0 && h.shortConnections > 0, summary)
  assert.is(h.heldAnswering, 100, summary)
  assert.ok(r.verdict.present > 500, summary)
  assert.ok(r.snapshots.ok >= 2, summary)
  assert.is(r.restart.status, 'done', summary)
  assert.ok(r.rss.primary.length >= 10, summary)
})

test.run()
