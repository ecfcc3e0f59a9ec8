import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { scrapedGauge } from '../scrapedGauge'

/** Why an events request was refused, as the `reason` label of `holdfast_events_rejected_total`. */
export type EventsRejection = 'invalid' | 'unsupported_media_type' | 'too_large' | 'store_failed' | 'store_stalled' | 'store_in_use'

/** What the spool's gauges read at scrape time. */
type SpoolGauges = { pending: number; oldestAgeMs: number; state: string; cursorUnsaved?: { events: number }; deadLetter?: { bytes: number; full?: unknown }; batchLimit?: number; batchSize: number }

/** The events sink's Prometheus metrics (registered in the server's registry). */
export interface EventsMetrics {
  /** `holdfast_events_accepted_total`: new events stored (or spooled). */
  accepted: Counter
  /** `holdfast_events_duplicates_total`: events refused as already accepted (within the window). */
  duplicates: Counter
  /** `holdfast_events_rejected_total{reason}`: requests refused (400 invalid, 415, 413, 500 store failed, 503 store stalled, 503 store in use by another server). */
  rejected: Counter<'reason'>
  /** `holdfast_events_fsync_seconds`: duration of each fsync of the events file or spool (one per group of batches). */
  fsync: Histogram
  /**
   * `holdfast_events_forwarded_total{outcome}`: events delivered upstream (`delivered`), refused by
   * it for good (413, 400/422) and kept in the dead-letter file (`dead_lettered`), dropped on such a
   * refusal while that file was full or as unreadable (`dropped`), or lost with a spool segment
   * deleted from outside (`lost`).
   */
  forwarded: Counter<'outcome'>
  /** `holdfast_events_file_deleted_bytes_total`: bytes of rotated events files deleted by `--events-keep` (accepted events, gone from this server). */
  fileDeletedBytes: Counter
  /** Supplies scrape-time values: ids remembered, spool depth and oldest age, forwarding state, a stalled write. */
  bind(sources: {
    rememberedIds?: () => number
    spool?: () => SpoolGauges
    stalled?: () => Array<{ path: string; seconds: number }>
  }): void
}

/** Creates the {@link EventsMetrics} in `registry`. */
export function createEventsMetrics(registry: Registry): EventsMetrics {
  const registers = [registry]
  let rememberedIds: () => number = () => 0
  let spool: (() => SpoolGauges) | undefined
  // The spool's gauges: without a spool (no --events-upstream) no sample, not a 0: summed over a
  // fleet, or alerted on, a server that forwards nothing is not an empty spool.
  const spoolGauge = (name: string, help: string, read: (gauges: SpoolGauges) => number) =>
    scrapedGauge(registers, name, help, () => {
      const gauges = spool?.()
      return gauges && read(gauges)
    })
  let stalled: (() => Array<{ path: string; seconds: number }>) | undefined
  new Gauge({
    name: 'holdfast_events_store_stalled_seconds',
    help: 'Seconds a call on the events file or spool (a write, the forwarder\'s read or cursor write) has not returned, by path, once past the write bound (a hung disk or mount); absent otherwise.',
    labelNames: ['path'] as const,
    registers,
    collect() {
      this.reset()
      for (const stall of stalled?.() ?? []) this.set({ path: stall.path }, stall.seconds)
    },
  })
  new Gauge({
    name: 'holdfast_events_dedupe_ids',
    help: 'Event ids remembered for de-duplication (bounded by the window).',
    registers,
    collect() {
      this.set(rememberedIds())
    },
  })
  spoolGauge('holdfast_events_spool_pending', 'Events in the forwarding spool, not yet delivered upstream (no sample without --events-upstream).', (g) => g.pending)
  spoolGauge('holdfast_events_spool_oldest_age_seconds', 'Age of the oldest event waiting in the forwarding spool (0 when none; no sample without --events-upstream).', (g) => g.oldestAgeMs / 1000)
  spoolGauge(
    'holdfast_events_spool_cursor_unsaved_events',
    'Delivered events the spool\'s saved cursor does not know of, its write having failed (a full disk): a crash now sends them again (0 when it is saved).',
    (g) => g.cursorUnsaved?.events ?? 0,
  )
  spoolGauge('holdfast_events_dead_letter_bytes', 'Bytes in the dead-letter file of the spool (events the upstream refused for good, kept for `holdfast-server events replay-dead-letters`).', (g) => g.deadLetter?.bytes ?? 0)
  spoolGauge(
    'holdfast_events_dead_letter_full',
    '1 while the dead-letter file is full: events the upstream refuses are then dropped (holdfast_events_forwarded_total{outcome="dropped"}); 0 otherwise.',
    (g) => (g.deadLetter?.full ? 1 : 0),
  )
  spoolGauge(
    'holdfast_events_forwarding_batch_size',
    'Events the forwarder sends per request now: the size a 413, or a 400 search that ended with every piece taken, taught, else the configured batch size (no sample without --events-upstream).',
    (g) => g.batchLimit ?? g.batchSize,
  )
  new Gauge({
    name: 'holdfast_events_upstream_state',
    help: 'State of event forwarding: 1 for the current one of ok, failing, misconfigured, taken-over (another server took the spool over), refusing (the sink refused events for good twice in a row, taking none between); no sample without --events-upstream.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      this.reset()
      if (!spool) return
      const current = spool().state
      for (const state of ['ok', 'failing', 'misconfigured', 'taken-over', 'refusing']) this.set({ state }, current === state ? 1 : 0)
    },
  })
  return {
    accepted: new Counter({ name: 'holdfast_events_accepted_total', help: 'New events stored or spooled.', registers }),
    duplicates: new Counter({ name: 'holdfast_events_duplicates_total', help: 'Events refused as duplicates (by id, within the window).', registers }),
    rejected: new Counter({ name: 'holdfast_events_rejected_total', help: 'Events requests refused, by reason (invalid, unsupported_media_type, too_large, store_failed, store_stalled, store_in_use).', labelNames: ['reason'] as const, registers }),
    fsync: new Histogram({
      name: 'holdfast_events_fsync_seconds',
      help: 'Duration of each fsync of the events file or spool (one per group of batches).',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    forwarded: new Counter({ name: 'holdfast_events_forwarded_total', help: 'Events delivered upstream, refused by it and dead-lettered, dropped on a refusal with the dead-letter file full or unreadable, or lost with a spool segment deleted from outside, by outcome.', labelNames: ['outcome'] as const, registers }),
    fileDeletedBytes: new Counter({
      name: 'holdfast_events_file_deleted_bytes_total',
      help: 'Bytes of rotated events files deleted by --events-keep: accepted events, gone from this server (whatever reads the files must have read them first).',
      registers,
    }),
    bind(sources) {
      if (sources.rememberedIds) rememberedIds = sources.rememberedIds
      if (sources.spool) spool = sources.spool
      if (sources.stalled) stalled = sources.stalled
    },
  }
}
