// The shared CacheLike behaviours (helpers/cachelike.ts) against the embedded Cache and
// against Client over three ferrocached servers and over one memcached 1.6.18.
import { Cache, Client } from '../src'
import { cacheLikeSuite } from './helpers/cachelike'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

cacheLikeSuite('embedded Cache', async () => {
  const cache = new Cache()
  return { cache, close: async () => cache.close() }
})

async function remote(start: () => Promise<Running[]>) {
  const servers = await start()
  const cache = new Client({ servers: servers.map((s) => `127.0.0.1:${s.port}`) })
  return {
    cache,
    close: async () => {
      await cache.close()
      await Promise.all(servers.map((s) => s.stop()))
    },
  }
}

cacheLikeSuite('Client over three ferrocached', () => remote(() => startAll([() => startFerrocached(), () => startFerrocached(), () => startFerrocached()])))
cacheLikeSuite('Client over memcached 1.6.18', () => remote(async () => [await startMemcached()]))
