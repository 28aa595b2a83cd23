// The typed API docs (`npm run docs`, TypeDoc over src/index.ts and src/adapters/keyv.ts)
// build without a warning: every type the public API mentions is exported, every public
// member has a doc comment, every {@link} resolves; and the binding's generated types carry
// a doc comment on every member (what `npm run docs:check` checks).
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'

const ROOT = join(__dirname, '..')

test('TypeDoc documents the public API without warnings', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--emit', 'none', '--treatWarningsAsErrors'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
  })
  const out = `${r.stdout}${r.stderr}`
  assert.is(r.status, 0, out)
  assert.not.match(out, /\[warning\]|\[error\]/, out)
})

test('every member of the binding (native/index.d.ts, from the Rust ///) has a doc comment', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'check-native-docs.js')], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
  assert.is(r.status, 0, `${r.stdout}${r.stderr}`)
})

test.run()
