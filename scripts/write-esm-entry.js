// Writes dist/index.mjs: the ESM entry re-exports the CommonJS build, so both module
// systems share one instance of the native binding.
const { writeFileSync } = require('node:fs')
const { join } = require('node:path')
const cjs = require(join(__dirname, '..', 'dist', 'index.js'))
const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
const body = [
  "import { createRequire } from 'node:module'",
  'const require = createRequire(import.meta.url)',
  "const cjs = require('./index.js')",
  ...names.map((n) => `export const ${n} = cjs.${n}`),
  'export default cjs',
  '',
].join('\n')
writeFileSync(join(__dirname, '..', 'dist', 'index.mjs'), body)
