#!/usr/bin/env node
// The ferrocached command (package.json "bin", `npm start`): a memcached-compatible server.
'use strict'
require('../dist/cli/main.js')
  .main(process.argv.slice(2))
  .catch((err) => {
    process.stderr.write(`ferrocached: ${err && err.stack ? err.stack : err}\n`)
    process.exit(1)
  })
