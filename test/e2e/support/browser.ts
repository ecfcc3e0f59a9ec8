// Headless Chromium for the end-to-end suite. There is deliberately no "skip when missing": a
// suite that passes without a browser proves nothing, so a missing browser fails every test with
// a message that says how to install one (CI installs it in `.ci/run`).
import { existsSync } from 'node:fs'
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core'
import chromiumConfig from './chromium.json'

export const CHROMIUM_PATH = process.env.HOLDFAST_CHROMIUM ?? chromiumConfig.path

const ARGS = chromiumConfig.args

/**
 * Launches Chromium, or throws a loud, actionable error when there is none. `backForwardCache`
 * keeps the back/forward cache on (Playwright turns it off by default) for tests of restored pages.
 */
export async function launchChromium({ backForwardCache = false } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    const message = [
      '',
      '='.repeat(78),
      `[holdfast e2e] No Chromium at ${CHROMIUM_PATH}: the browser suite cannot run.`,
      '  Install it:   apt-get install -y chromium        (Debian/Ubuntu; CI does this in .ci/run)',
      '  or point HOLDFAST_CHROMIUM at a Chromium/Chrome binary.',
      process.env.CI ? '  CI is set: this is a failure, not a skip.' : '',
      '='.repeat(78),
    ].join('\n')
    console.error(message)
    throw new Error(`[holdfast e2e] Chromium not found at ${CHROMIUM_PATH}; install it with: apt-get install -y chromium`)
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS, ignoreDefaultArgs: backForwardCache ? ['--disable-back-forward-cache'] : undefined })
}

/** What the page said on its console (errors and warnings) and the exceptions it threw. */
export interface ConsoleLog {
  messages: Array<{ type: string; text: string }>
  pageErrors: string[]
  /** Every error/warning and uncaught exception, one per line, for assertion messages. */
  all(): string[]
}

/** Starts recording a page's console errors and warnings and its uncaught exceptions. */
export function recordConsole(page: Page): ConsoleLog {
  const log: ConsoleLog = {
    messages: [],
    pageErrors: [],
    all: () => [...log.messages.map((m) => `${m.type}: ${m.text}`), ...log.pageErrors.map((e) => `pageerror: ${e}`)],
  }
  page.on('console', (message: ConsoleMessage) => {
    const type = message.type()
    if (type !== 'error' && type !== 'warning') return
    // "Failed to load resource" names no URL in its text; the location does.
    const where = message.location()?.url
    log.messages.push({ type, text: where ? `${message.text()} (${where})` : message.text() })
  })
  page.on('pageerror', (error) => log.pageErrors.push(String(error?.stack ?? error)))
  return log
}
