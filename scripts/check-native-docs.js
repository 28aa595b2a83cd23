#!/usr/bin/env node
// The binding's generated types (native/index.d.ts) carry the Rust `///` comments: every
// class, interface, function and member there must have one, so `npm run docs:check`
// fails when a #[napi] item is added without saying what it is.
'use strict'
const { readFileSync } = require('node:fs')
const { join } = require('node:path')

const file = process.argv[2] ?? join(__dirname, '..', 'native', 'index.d.ts')
const lines = readFileSync(file, 'utf8').split('\n')
const declaration = /^\s*(export\s+(declare\s+)?(class|interface|function|const|enum|type)\s|(static\s+)?(get\s+|set\s+)?[A-Za-z_$][\w$]*\??\s*[(:<]|constructor\s*\()/
const missing = []
let owner = ''
for (let i = 0; i < lines.length; i++) {
  const line = lines[i]
  const m = /^export\s+(?:declare\s+)?(?:class|interface)\s+(\w+)/.exec(line)
  if (m) owner = m[1]
  if (!declaration.test(line) || /^\s*(\/\/|\*|\/\*)/.test(line)) continue
  let j = i - 1
  while (j >= 0 && lines[j].trim() === '') j--
  if (j >= 0 && lines[j].trim().endsWith('*/')) continue
  const name = line.trim().replace(/\s*[({:<].*$/, '')
  missing.push(`${file}:${i + 1}: ${m ? name : `${owner}.${name}`}`)
}
if (missing.length) {
  console.error(`${missing.length} declarations without a doc comment (add /// to the #[napi] item):`)
  for (const m of missing) console.error(`  ${m}`)
  process.exit(1)
}
