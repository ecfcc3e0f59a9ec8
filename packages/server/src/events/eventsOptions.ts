// What an embedder (createFlagHandler, createFlagServer) or the CLI sets on the events side: where
// accepted events go (a file, a spool forwarded upstream, or memory), and the bounds on them.
import type { DedupeWindowOptions } from './dedupeWindow'
import type { EventFileSystem } from './fileSystem'
import type { ForwarderOptions } from './forwarderOptions'
import type { SinkClock } from './sink'

/** Default spool directory of `eventsUpstream`, relative to the working directory. */
export const DEFAULT_SPOOL_DIR = '.holdfast/events-spool'

/** The events options of `createFlagHandler` / `createFlagServer`. */
export interface EventsOptions {
  /**
   * JSON Lines file that accepted events are appended to (fsynced before the 202) and whose tail
   * is read back on start so de-duplication survives a restart. Default: none (memory only: the
   * dedupe window and `events()` still work, nothing is kept across restarts).
   */
  eventsFile?: string
  /** Rotate `eventsFile` once it would pass this many bytes (`--events-max-bytes`). Default: never. */
  eventsMaxBytes?: number
  /** Rotated events files kept (`events.jsonl.1` newest … `.N`); older are deleted, each with a warning and in `holdfast_events_file_deleted_bytes_total` (`--events-keep`). Default 5. */
  eventsKeep?: number
  /**
   * The de-duplication window: an event id is refused as a duplicate while it is among the last
   * `maxIds` accepted (default 100,000) and was accepted less than `windowMs` ago (default 24 h).
   * Past that, delivery is at-least-once. `now` is the clock, for tests (default: epoch ms at start
   * counted on by the monotonic clock, so a system clock stepped while the server runs forgets no id).
   */
  eventsDedupe?: DedupeWindowOptions
  /**
   * The file system the events file (and spool) is written through. Default: node:fs. Tests
   * inject one that fails on cue (disk full, short writes, a failing fsync).
   */
  eventsFileSystem?: EventFileSystem
  /**
   * Forward accepted events to this upstream events endpoint (`--events-upstream URL`, e.g.
   * `https://flags.example/holdfast/v1/events`) instead of keeping them: each batch is fsynced
   * into a spool (`eventsSpoolDir`) before the 202, then delivered in batches with backoff,
   * `Retry-After` and jitter, and leaves the spool only after a 2xx (docs/events-sink.md,
   * "Events through the relay"). Cannot be combined with `eventsFile`. Default: none.
   */
  eventsUpstream?: string
  /**
   * The spool directory for `eventsUpstream` (`--events-spool DIR`). Default: `events-spool` in the
   * relay's `dataDir` when one is given, else {@link DEFAULT_SPOOL_DIR} in the working directory.
   */
  eventsSpoolDir?: string
  /**
   * Bound of the dead-letter file, `<spool>/dead-letter/dead-letter.ndjson`, where events the
   * upstream refuses for good (413 alone, 400/422) are kept (`--events-dead-letter-max-bytes N`).
   * Default 64 MiB; when full, a refused event is dropped and the status, a metric and the log say so.
   */
  eventsDeadLetterMaxBytes?: number
  /** Headers sent with every forwarded batch (e.g. `{ Authorization: 'Bearer KEY' }`). Default none. */
  eventsUpstreamHeaders?: Record<string, string>
  /**
   * Tuning of the forwarder (batch size, timeouts, backoff, an injected clock for tests). Defaults:
   * see `ForwarderOptions`. Not its `deadLetter`: the spool's own file is (the one
   * `events replay-dead-letters` reads), so one given here was replaced without a word.
   */
  eventsForwarding?: Omit<ForwarderOptions, 'url' | 'spool' | 'log' | 'headers' | 'deadLetter'>
  /**
   * How long an events request waits for the events file or spool (its write and fsync) before it
   * is answered 503 with `Retry-After` (the client keeps its events and retries); while that write
   * stays hung (a mount that died), later requests are answered 503 at once, and
   * `/holdfast/v1/status` (`events.stalled`) and `holdfast_events_store_stalled_seconds` show it.
   * Default 4,000 ms (under the browser client's 5 s request timeout).
   */
  eventsWriteTimeoutMs?: number
  /** The clock of `eventsWriteTimeoutMs`. Default the global timers and a monotonic epoch-ms clock (a stepped wall clock does not fake or hide a stall); tests inject one. */
  eventsClock?: SinkClock
}
