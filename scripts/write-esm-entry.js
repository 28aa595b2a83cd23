// Writes the ESM entries (dist/index.mjs, dist/adapters/keyv.mjs): each re-exports its
// CommonJS build, so both module systems share one instance of the native binding.
const { writeFileSync } = require('node:fs')
const { basename, join } = require('node:path')
const dist = join(__dirname, '..', 'dist')
for (const entry of ['index.js', join('adapters', 'keyv.js')]) {
  const cjs = require(join(dist, entry))
  const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
  const body = [
    "import { createRequire } from 'node:module'",
    'const require = createRequire(import.meta.url)',
    `const cjs = require('./${basename(entry)}')`,
    ...names.map((n) => `export const ${n} = cjs.${n}`),
    // A module with its own default export keeps it; otherwise the default is the module.
    `export default ${'default' in cjs ? 'cjs.default' : 'cjs'}`,
    '',
  ].join('\n')
  writeFileSync(join(dist, entry.replace(/\.js$/, '.mjs')), body)
}
