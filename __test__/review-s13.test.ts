// Review of session 13's server and command-line work, each case beside memcached 1.6.18:
// `-o` lists that combine `no_modern`/`no_lru_maintainer` with what they turn off.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const running: Running[] = []
tearDown(test, async () => {
  await Promise.all(running.map((r) => r.stop()))
})

async function settings(port: number, names: readonly string[]): Promise<string[]> {
  const c = await RawConn.open(port)
  try {
    c.send('stats settings\r\n')
    const text = await c.until('END\r\n')
    return names.map((n) => `${n} ${new RegExp(`^STAT ${n} (.*)\r$`, 'm').exec(text)?.[1]}`)
  } finally {
    c.close()
  }
}

// memcached's `lru_maintainer` sets lru_segmented again (and starts the maintainer), so it
// undoes what an earlier `no_lru_maintainer` or `no_modern` turned off; ferrocached took it
// for a no-op and stayed flat.
test('-o no_modern,lru_maintainer and no_lru_maintainer,lru_maintainer: segmented LRU, as memcached', async () => {
  const configs = [['-o', 'no_modern,lru_maintainer'], ['-o', 'no_lru_maintainer', '-o', 'lru_maintainer']]
  const servers = await startAll(configs.flatMap((flags) => [() => startMemcached(flags), () => startFerrocached(['-l', '127.0.0.1', '-U', '0', ...flags])]))
  running.push(...servers)
  const names = ['lru_segmented', 'slab_reassign', 'slab_automove', 'lru_crawler', 'temp_lru']
  for (const [i, flags] of configs.entries()) {
    const [m, f] = await Promise.all([settings(servers[2 * i]!.port, names), settings(servers[2 * i + 1]!.port, names)])
    assert.equal(f, m, flags.join(' '))
    assert.ok(m.includes('lru_segmented yes'), m.join(', '))
  }
})

test.run()
