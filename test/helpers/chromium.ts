// Debian's chromium, driven by playwright-core, for the browser tests: headless, no sandbox (the
// tests run as root), nothing it asks for leaves the machine (names resolve only as the rules say).
import { existsSync } from 'node:fs'
import type { Browser } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

/** false, or why the browser tests are skipped */
export const noChromium: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium package to run the browser tests`

/**
 * Launches Chromium; every name outside `resolverRules` fails to resolve. `executablePath`: a
 * program that starts CHROMIUM with the arguments it is given (e.g. in a network namespace).
 */
export async function launchChromium (resolverRules = 'MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', executablePath = CHROMIUM): Promise<Browser> {
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--host-resolver-rules=${resolverRules}`],
    timeout: 60000,
  })
}
