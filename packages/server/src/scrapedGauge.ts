import { Gauge, type Registry } from 'prom-client'

/**
 * A gauge read at scrape time that has no sample while `read` says `undefined` (a value this server
 * does not have: no spool, never answered, nothing served), never a 0: summed over a fleet or
 * alerted on, a 0 says "empty" or "just now". `remove()`, not `reset()`: on a gauge without labels
 * `reset()` puts prom-client's own 0 back.
 */
export function scrapedGauge(registers: Registry[], name: string, help: string, read: () => number | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers,
    collect() {
      const value = read()
      if (value !== undefined) this.set(value)
      else this.remove()
    },
  })
}
