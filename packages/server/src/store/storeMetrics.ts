import { Counter, Gauge, type Registry } from 'prom-client'
import type { LeaseRole } from './leaseKeeper'
import { scrapedGauge } from '../scrapedGauge'
import type { StoreStatus } from './sharedStore'

/** What the store metrics read at scrape time. */
export interface StoreMetricsSource {
  status(): StoreStatus & { taken: number; role?: LeaseRole; unshared?: number; aheadOfStore?: number; refusedCopy?: unknown }
  now?: () => number
  /** Proxy mode: also registers `holdfast_redis_unshared_answers` and `holdfast_redis_places_ahead_total`. */
  proxy?: boolean
}

/**
 * Registers the shared store's metrics on `registry`, read when scraped:
 * `holdfast_redis_up` (1 while the store answers, runs this relay's scripts and delivers its notices), `holdfast_redis_role{role}` (1 for
 * this relay's role: leader, follower or solo), `holdfast_redis_last_ok_age_seconds`,
 * `holdfast_redis_command_failures_total` and `holdfast_redis_documents_taken_total` (documents
 * another relay polled and this one took from the store); in proxy mode also
 * `holdfast_redis_unshared_answers` (answers the store could not take yet, being retried, and drops for a 401/403 it has not taken yet: being written, waiting for their turn, written back after a restart, or retried) and
 * `holdfast_redis_places_ahead_total` (answers read back from the data dir whose recorded store
 * version was ahead of the store's clock, written back at a new version), in the
 * definitions modes `holdfast_redis_copy_refused` (1 while this relay refuses the store's copy).
 */
export function registerStoreMetrics(registry: Registry, source: StoreMetricsSource): void {
  const registers = [registry]
  const now = source.now ?? Date.now
  // A counter over a running total the store keeps: each scrape adds what it grew by since the last.
  const totalCounter = (name: string, help: string, total: () => number) => {
    let counted = 0
    new Counter({
      name,
      help,
      registers,
      collect() {
        const value = total()
        if (value > counted) this.inc(value - counted)
        counted = value
      },
    })
  }
  new Gauge({
    name: 'holdfast_redis_up',
    help: 'Whether the shared store (Redis) is usable (1: it answers, runs the relay\'s scripts and delivers its notices) or not (0: down, or refusing what the relay needs; redis.lastError in the status says why).',
    registers,
    collect() {
      this.set(source.status().state === 'up' ? 1 : 0)
    },
  })
  new Gauge({
    name: 'holdfast_redis_role',
    help: 'This relay on the shared store: leader (polls the upstream), follower (takes from the store) or solo (store unreachable, polls itself).',
    labelNames: ['role'] as const,
    registers,
    collect() {
      const role = source.status().role
      for (const r of ['leader', 'follower', 'solo'] as const) this.set({ role: r }, r === role ? 1 : 0)
    },
  })
  scrapedGauge(registers, 'holdfast_redis_last_ok_age_seconds', 'Seconds since the shared store last answered a command.', () => {
    const { lastOkAt: at, lastOkAgeMs } = source.status()
    // Never answered: no sample (a 0 says "just now"). The store's own monotonic age first: the
    // wall clock set back made `at` look ahead (0 s).
    if (lastOkAgeMs !== undefined) return lastOkAgeMs / 1000
    return at === undefined ? undefined : Math.max(0, (now() - at) / 1000)
  })
  totalCounter('holdfast_redis_command_failures_total', 'Commands to the shared store that failed or timed out.', () => source.status().failures)
  if (source.proxy) {
    new Gauge({
      name: 'holdfast_redis_unshared_answers',
      help: 'Proxy mode: upstream answers this relay could not write to the shared store yet (retried with backoff), and drops of --on-upstream-unauthorized clear the store has not taken yet (being written, waiting for their turn, written back after a restart, or retried).',
      registers,
      collect() {
        this.set(source.status().unshared ?? 0)
      },
    })
    totalCounter('holdfast_redis_places_ahead_total', 'Proxy mode with --data-dir: answers read back from the data dir whose recorded store version was ahead of the store\'s clock (written against another Redis, or edited by hand): not used, written back at a new version.', () => source.status().aheadOfStore ?? 0)
  }
  if (!source.proxy) {
    new Gauge({
      name: 'holdfast_redis_copy_refused',
      help: 'Whether this relay refuses the store\'s copy of the definitions (1: its --max-shrink, no lineage vouching for it; redis.refusedCopy in the status says why) or not (0).',
      registers,
      collect() {
        this.set(source.status().refusedCopy ? 1 : 0)
      },
    })
  }
  totalCounter('holdfast_redis_documents_taken_total', 'Documents taken from the shared store (polled or answered by another relay).', () => source.status().taken)
}
