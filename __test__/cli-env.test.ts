// `ferrocached --help` and README: every long option has a FERROCACHE_<LONG_OPTION>
// environment variable (flags win). memcached's `--slab-growth-factor` (an alias of -f)
// had none: FERROCACHE_SLAB_GROWTH_FACTOR was silently ignored.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ENV_VARS, LONG_OPTIONS, parseCommandLine, UsageError } from '../src/cli/options'

test('every long option but --help, --version and --license has its FERROCACHE_<LONG_OPTION> variable', () => {
  const missing = LONG_OPTIONS.filter((o) => o !== 'help' && o !== 'version' && o !== 'license').filter(
    (o) => ENV_VARS[`FERROCACHE_${o.toUpperCase().replace(/-/g, '_')}`] !== o,
  )
  assert.equal(missing, [])
})

test('FERROCACHE_SLAB_GROWTH_FACTOR sets the growth factor and is checked by name; flags win', () => {
  const run = (argv: string[], env: NodeJS.ProcessEnv) => {
    const c = parseCommandLine(argv, env)
    if (c.kind !== 'run') throw new Error(`expected run, got ${c.kind}`)
    return c.settings
  }
  assert.is(run([], { FERROCACHE_SLAB_GROWTH_FACTOR: '1.3' }).growthFactor, 1.3)
  assert.is(run(['-f', '1.5'], { FERROCACHE_SLAB_GROWTH_FACTOR: '1.3' }).growthFactor, 1.5)
  // flags win over variables, whichever of the two names each uses
  assert.is(run(['--slab-growth-factor', '1.5'], { FERROCACHE_FACTOR: '1.3' }).growthFactor, 1.5)
  assert.is(run(['-f', '1.5', '--slab-growth-factor', '1.7'], {}).growthFactor, 1.5)
  assert.throws(() => run([], { FERROCACHE_SLAB_GROWTH_FACTOR: '0.5' }), (e: unknown) => e instanceof UsageError && /^FERROCACHE_SLAB_GROWTH_FACTOR /.test(e.message))
})

test('a FERROCACHE_* variable that names no option is a start-up note, with the one meant when only underscores differ', () => {
  const c = parseCommandLine([], {
    FERROCACHE_MEMORYLIMIT: '128', // a typo: the server starts with 64 MB
    FERROCACHE_BOGUS: '1',
    FERROCACHE_PORT: '11300',
    FERROCACHE_TEST_SHARDS: '1', // the test tools' own
    FERROCACHE_MODEL_SCALE: '2',
  })
  if (c.kind !== 'run') throw new Error(`expected run, got ${c.kind}`)
  assert.is(c.settings.memoryLimit, 64 * 1024 * 1024)
  assert.equal(
    (c.settings.notes ?? []).filter((n) => n.startsWith('FERROCACHE_')),
    ['FERROCACHE_MEMORYLIMIT: no such variable, ignored (FERROCACHE_MEMORY_LIMIT?)', 'FERROCACHE_BOGUS: no such variable, ignored (ferrocached --help: FERROCACHE_<LONG_OPTION>)'],
  )
})

test.run()
