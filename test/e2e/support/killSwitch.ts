// What the live-update suites share: the fixture's kill switch in a watched flags file (flipped by
// editing the file, as an operator would), the requests a server answered counted by route, and
// what the fixture page shows for the switch.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { createFlagServer, type FlagServer, type FlagServerOptions, type Middleware } from '@holdfast/server'
import { fixtureFlags } from './fixturePage'

export const KEY = 'checkout-kill-switch'

export interface KillSwitch {
  /** The flags file (set per test). */
  file: string
  /** The value the server serves now. */
  current: boolean
  /** Flips the switch in the file; returns the value the page should show now. */
  flip(): Promise<boolean>
  /** Writes the fixture's flags, the switch on, to a fresh file in a temp dir named by `prefix`. */
  prepare(prefix: string): Promise<void>
  /** Deletes that temp dir. */
  remove(): Promise<void>
}

export function killSwitch(): KillSwitch {
  const sw: KillSwitch = {
    file: '',
    current: true,
    async flip() {
      sw.current = !sw.current
      const flags = JSON.parse(await readFile(sw.file, 'utf8'))
      flags.flags[KEY].defaultVariant = sw.current ? 'on' : 'off'
      await writeFile(sw.file, JSON.stringify(flags, null, 2))
      return sw.current
    },
    async prepare(prefix) {
      dir = await mkdtemp(join(tmpdir(), prefix))
      sw.file = join(dir, 'flags.json')
      sw.current = true
      await writeFile(sw.file, JSON.stringify(fixtureFlags(), null, 2))
    },
    async remove() {
      if (dir) await rm(dir, { recursive: true, force: true })
    },
  }
  let dir: string | undefined
  return sw
}

const silent = { info() {}, warn() {}, error() {} }

/**
 * The reference server on the switch's file, quiet, never shedding load (a loaded CI machine),
 * with the given middleware, and live updates whose streams reconnect after 0.5 s.
 */
export function serveSwitch(sw: KillSwitch, middleware: Middleware[], options: { port?: number; liveUpdates?: Partial<Exclude<FlagServerOptions['liveUpdates'], false>> } = {}): Promise<FlagServer> {
  return createFlagServer({ flags: sw.file, port: options.port ?? 0, logger: silent, maxEventLoopDelayMs: 0, middleware, liveUpdates: { retryMs: 500, ...options.liveUpdates } })
}

/** A server middleware counting requests by route name. */
export function routeCounter() {
  const counts: Record<string, number> = {}
  const count: Middleware = async (_req, _res, route, next) => {
    counts[route.name] = (counts[route.name] ?? 0) + 1
    return next()
  }
  return {
    count,
    get: (name: string) => counts[name] ?? 0,
    reset: () => {
      for (const key of Object.keys(counts)) delete counts[key]
    },
  }
}

/** The switch's value as the fixture page shows it. */
export const shown = (page: Page) => page.evaluate((key) => document.querySelector(`[data-testid="flag-${key}-value"]`)?.textContent, KEY)

/** Waits until the fixture page shows `value` for the switch. */
export const waitShown = (page: Page, value: string, timeout = 5000) =>
  page.waitForFunction(([key, value]) => document.querySelector(`[data-testid="flag-${key}-value"]`)?.textContent === value, [KEY, value] as const, { timeout })
