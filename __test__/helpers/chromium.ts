// Headless Chromium for the status-page tests: Debian's `chromium`, driven by puppeteer-core.
import { existsSync } from 'node:fs'
import type { Browser } from 'puppeteer-core'

export const CHROMIUM = '/usr/bin/chromium'

/** True when Chromium is installed; on CI (.ci/run installs it) its absence is an error. */
export function haveChromium(what = 'status page test'): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`)
  console.warn(`SKIPPED ${what}: ${CHROMIUM} is missing (apt-get install chromium)`)
  return false
}

/**
 * Launches it over a pipe (no DevTools port whose address puppeteer reads from its output)
 * and without a crash reporter. A launch that hangs is tried once more: a CI run once waited
 * 30 s for a start that usually takes 0.5 s (not reproduced in 60 launches under load).
 */
export async function launchChromium(): Promise<Browser> {
  const { default: puppeteer } = await import('puppeteer-core')
  const options = {
    executablePath: CHROMIUM,
    headless: true,
    pipe: true,
    timeout: 20_000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-breakpad', '--disable-crash-reporter', '--disable-dev-shm-usage'],
  }
  try {
    return await puppeteer.launch(options)
  } catch (err) {
    console.warn(`chromium did not start (${(err as Error).message}); trying once more`)
    return puppeteer.launch(options)
  }
}
