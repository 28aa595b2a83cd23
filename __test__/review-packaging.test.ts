// The release workflow's publish job (review of issue 6): every step that publishes has the
// npm token, and the manifest it publishes has no script that npm counts as an install script. The checkout's `prepare` (it builds Rust and TypeScript) must not
// reach users: npm never runs it for a registry install, but npm 11 warns every user of a
// package that has one. The workflow's own command is run on a copy of package.json.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = join(__dirname, '..')
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare']

/** The `run:` commands of the release workflow's publish job, in order. */
function publishSteps(): string[] {
  const text = readFileSync(join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8')
  const job = text.slice(text.indexOf('\n  publish:'))
  assert.ok(job.length > 20, 'release.yml has a publish job')
  return [...job.matchAll(/^\s+- run: (.+)$/gm)].map((m) => m[1]!.trim())
}

test('the publish job strips the install-time scripts from the manifest before npm publish', () => {
  const steps = publishSteps()
  const publish = steps.findIndex((s) => s.startsWith('npm publish'))
  assert.ok(publish >= 0, steps.join('\n'))
  const strip = steps.slice(0, publish).filter((s) => s.startsWith('npm pkg delete '))
  assert.ok(strip.length > 0, `no "npm pkg delete" before npm publish:\n${steps.join('\n')}`)

  // run those commands on a copy of package.json, as the workflow does in its checkout
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-manifest-'))
  try {
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
    for (const step of strip) {
      const args = step.split(/\s+/).slice(1)
      const r = spawnSync('npm', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 })
      assert.is(r.status, 0, `${step}: ${r.stderr}`)
    }
    const before = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    const after = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }
    const left = INSTALL_SCRIPTS.filter((name) => after.scripts?.[name] !== undefined)
    assert.equal(left, [], 'install-time scripts left in the published manifest')
    // nothing else is lost: the other scripts and fields stay as in the checkout
    const kept = Object.fromEntries(Object.entries(before.scripts).filter(([name]) => !INSTALL_SCRIPTS.includes(name)))
    assert.equal(after.scripts, kept)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** The publish job's steps, each as its text (`- run: …` / `- uses: …` and what follows). */
function publishStepTexts(): string[] {
  const text = readFileSync(join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8')
  const job = text.slice(text.indexOf('\n  publish:'))
  return job.split(/\n(?=      - )/).slice(1)
}

test('every publish job step that publishes to npm has the token (napi prepublish publishes the platform packages)', () => {
  const publishing = publishStepTexts().filter(
    (step) => /^\s+- run: (npm publish|npx napi prepublish|npx napi pre-publish)\b/.test(step) && !/--dry-run|--skip-optional-publish/.test(step),
  )
  assert.is(publishing.length, 2, publishing.join('\n'))
  for (const step of publishing) assert.match(step, /\n\s+env:\n\s+NODE_AUTH_TOKEN: \$\{\{ secrets\.NPM_TOKEN \}\}/, step)
})

test('the manifest published with --provenance names the repository that builds it (npm refuses it otherwise, E422)', () => {
  const steps = publishSteps()
  const publish = steps.findIndex((s) => s.startsWith('npm publish'))
  assert.ok(publish >= 0, steps.join('\n'))
  if (!steps[publish]!.includes('--provenance')) return
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-manifest-'))
  try {
    copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
    // the job's npm pkg steps, as GitHub Actions expands them for owner/name
    for (const step of steps.slice(0, publish).filter((s) => s.startsWith('npm pkg '))) {
      const args = step.replaceAll('${{ github.repository }}', 'owner/name').split(/\s+/).slice(1)
      const r = spawnSync('npm', args, { cwd: dir, encoding: 'utf8', timeout: 30_000 })
      assert.is(r.status, 0, `${step}: ${r.stderr}`)
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { repository?: { url?: string } | string }
    const url = typeof manifest.repository === 'string' ? manifest.repository : manifest.repository?.url
    // npm compares it, normalized, with https://github.com/<owner>/<name> from the provenance
    assert.match(url ?? '', /^(git\+)?https:\/\/github\.com\/owner\/name(\.git)?$/, `repository: ${JSON.stringify(manifest.repository)}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
