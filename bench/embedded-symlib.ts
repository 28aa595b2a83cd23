// Loads the .node named by SYMLIB in place of the checkout's build (for profiling a build
// with symbols, or comparing two builds); a no-op without SYMLIB. Import it first.
import { join } from 'node:path'

if (process.env.SYMLIB) {
  const local = join(__dirname, '..', 'native', 'ferrocache.linux-x64-gnu.node')
  const m = { exports: {} as unknown }
  process.dlopen(m as NodeModule, process.env.SYMLIB)
  require.cache[local] = { id: local, filename: local, loaded: true, exports: m.exports } as NodeModule
}
