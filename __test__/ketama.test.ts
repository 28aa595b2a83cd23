// ketama against the golden file recorded from a real nutcracker (fixtures/ketama,
// regenerate with generate.ts there), plus the properties consistent hashing promises.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { Continuum, ketamaHash, ketamaName, pointsFor, type KetamaNode } from '../src/client/ketama'
import golden from './fixtures/ketama/nutcracker.json'
import { goldenKeys } from './fixtures/ketama/generate'

const named = (name: string, weight = 1): KetamaNode => ({ host: 'unused', port: 0, weight, name })

test('every golden key goes where nutcracker sent it (4 pools, weights, names)', () => {
  const keys = goldenKeys(3000)
  assert.is(golden.pools.length, 4)
  for (const pool of golden.pools) {
    const c = new Continuum(pool.servers.map((s) => named(s.name, s.weight)))
    assert.is(pool.owners.length, keys.length)
    const wrong = keys.filter((k, i) => c.lookup(k) !== Number(pool.owners[i]))
    assert.equal(wrong.slice(0, 5), [], `${pool.servers.map((s) => s.name)}: ${wrong.length} keys differ`)
    // Every server got a share: the fixture is not degenerate.
    for (let s = 0; s < pool.servers.length; s++) assert.ok(pool.owners.includes(String(s)))
  }
})

test('point names drop the default port only', () => {
  assert.is(ketamaName({ host: '10.0.0.1', port: 11211 }), '10.0.0.1')
  assert.is(ketamaName({ host: '10.0.0.1', port: 11212 }), '10.0.0.1:11212')
  assert.is(ketamaName({ host: 'h', port: 11211, name: 'alias' }), 'alias')
  // The same pool written with and without the default port is the same continuum.
  const a = new Continuum([{ host: 'a', port: 11211, weight: 1 }, { host: 'b', port: 11211, weight: 1 }])
  const b = new Continuum([named('a'), named('b')])
  for (const k of goldenKeys(200)) assert.is(a.lookup(k), b.lookup(k))
})

test('160 points per server at equal weights; float truncation at uneven ones', () => {
  assert.is(pointsFor(1, 3, 3), 160)
  assert.is(pointsFor(1, 1, 1), 160)
  assert.is(new Continuum([named('x'), named('y'), named('z')]).size, 480)
  // 11 servers of weight 1: 1/11 in float times 440 lands just under 40 digests.
  const eleven = Array.from({ length: 11 }, (_, i) => named(`n${i}`))
  const total = eleven.reduce((s, n) => s + pointsFor(n.weight, 11, 11), 0)
  assert.is(new Continuum(eleven).size, total)
  assert.ok(total % 4 === 0 && total <= 11 * 160)
})

test('the key hash is MD5 little-endian, as hash_md5', () => {
  // md5("") = d41d8cd98f00b204e9800998ecf8427e: first word d4 1d 8c d9 read little-endian.
  assert.is(ketamaHash(''), 0xd98c1dd4)
  assert.is(ketamaHash(Buffer.from('abc')), ketamaHash('abc'))
})

test('ejecting a server moves only its keys; the others stay put', () => {
  const nodes = [named('a'), named('b'), named('c'), named('d')]
  const full = new Continuum(nodes)
  const without = new Continuum(nodes, [true, false, true, true])
  let moved = 0
  for (const k of goldenKeys(2000)) {
    const before = full.lookup(k)
    const after = without.lookup(k)
    assert.is.not(after, 1)
    if (before === 1) moved++
    else assert.is(after, before, k)
  }
  assert.ok(moved > 300 && moved < 700, `b owned ${moved} of 2000 keys`)
  assert.is(new Continuum(nodes, [false, false, false, false]).lookup('k'), -1)
})

test('lookupHash wraps past the last point to the first', () => {
  const c = new Continuum([named('a'), named('b')])
  assert.is(c.lookupHash(0xffff_ffff), c.lookupHash(0))
})

// Two servers ketama names alike share every point: the first took all their keys and the
// other none, silently (1000 of 1000 keys on one). nutcracker refuses such a pool.
test('servers that ketama would place by the same name are refused, naming both', () => {
  const clash = (servers: ConstructorParameters<typeof Client>[0]['servers'], message: RegExp): void => {
    assert.throws(
      () => new Client({ servers }),
      (e: Error & { code?: string }) => e instanceof RangeError && e.code === 'FERROCACHE_BAD_ARGUMENT' && message.test(e.message),
    )
  }
  clash([{ host: '10.0.0.1', port: 11211, name: 'a' }, { host: '10.0.0.2', port: 11211, name: 'a' }], /^servers\[1\] is placed by ketama as 'a', as servers\[0\] is/)
  clash(['10.0.0.2:11212', { host: '10.0.0.1', port: 11211, name: '10.0.0.2:11212' }], /servers\[1\] is placed by ketama as '10\.0\.0\.2:11212'/)
  // port 11211 is left out of the name: 'cache' is the host 'cache' on it
  clash(['cache', 'x:1', { host: '10.0.0.1', port: 1, name: 'cache' }], /servers\[2\] is placed by ketama as 'cache', as servers\[0\] is/)
  // distinct names for one host are fine
  assert.is(new Client({ servers: [{ host: 'h', port: 1, name: 'a' }, { host: 'h', port: 2, name: 'b' }] }).servers.length, 2)
})

test.run()
