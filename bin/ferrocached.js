#!/usr/bin/env node
// The ferrocached command (package.json "bin", `npm start`): a memcached-compatible server.
'use strict'
let cli
try {
  cli = require('../dist/cli/main.js')
} catch (err) {
  // no engine for this machine: the message says what to install; a stack would bury it
  if (!err || err.code !== 'FERROCACHE_NO_BINARY') throw err
  process.stderr.write(`ferrocached: ${err.message}\n`)
  process.exit(1)
}
cli.main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`ferrocached: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
