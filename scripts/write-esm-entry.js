// Writes the ESM entries (dist/index.mjs, dist/adapters/keyv.mjs): each re-exports its
// CommonJS build, so both module systems share one instance of the native binding. A static
// import, not createRequire: Node loads it through the same module cache as require(), and
// bundlers follow it (a createRequire of './index.js' resolved against the bundle's path).
// An entry with a default export of its own also gets ESM types (dist/adapters/keyv.d.mts):
// its CommonJS .d.ts would make TypeScript type an ES module's default import as the whole
// module, where keyv.mjs exports the class.
const { writeFileSync } = require('node:fs')
const { basename, join } = require('node:path')
const dist = join(__dirname, '..', 'dist')
for (const entry of ['index.js', join('adapters', 'keyv.js')]) {
  const cjs = require(join(dist, entry))
  // index.js's default is itself (for CommonJS default imports): not a default of its own.
  const ownDefault = cjs.default !== undefined && cjs.default !== cjs
  const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
  const body = [
    `import cjs from './${basename(entry)}'`,
    ...names.map((n) => `export const ${n} = cjs.${n}`),
    // A module with its own default export keeps it; otherwise the default is the module.
    `export default ${ownDefault ? 'cjs.default' : 'cjs'}`,
    '',
  ].join('\n')
  writeFileSync(join(dist, entry.replace(/\.js$/, '.mjs')), body)
  if (ownDefault) {
    const defaultName = names.find((n) => cjs[n] === cjs.default)
    if (defaultName === undefined) throw new Error(`${entry}: the default export must also be a named export (for its .d.mts)`)
    const from = `./${basename(entry)}`
    const types = [`export * from '${from}'`, `export { ${defaultName} as default } from '${from}'`, ''].join('\n')
    writeFileSync(join(dist, entry.replace(/\.js$/, '.d.mts')), types)
  }
}
