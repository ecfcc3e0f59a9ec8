// What the events pipeline (pipeline.ts, from --events-upstream and the embedder's
// `eventsForwarding`) sets on the forwarder.
import type { ServerLogger } from '../logger'
import type { DeadLetter } from './deadLetter'
import type { ForwarderClock } from './forwarderClock'
import type { ForwardOutcome } from './forwardingStats'
import type { Spool } from './spool'

/** Options of {@link createForwarder}. */
export interface ForwarderOptions {
  /** The upstream events endpoint, e.g. `https://flags.example/holdfast/v1/events`. Required. */
  url: string
  /** The spool the batches are read from; its cursor moves past a batch once the sink took it (or it was dead-lettered). Required. */
  spool: Spool
  /** Headers sent with every batch (e.g. `Authorization`). Default none. */
  headers?: Record<string, string>
  /** Events per request. Default 2,000 ({@link DEFAULT_BATCH_SIZE}). */
  batchSize?: number
  /** Bytes of events per request (the sink's cap is 1 MiB). Default 512 KiB. */
  batchBytes?: number
  /** Per-request timeout. Default 10,000 ms. */
  timeoutMs?: number
  /** First backoff delay. Default 1,000 ms. */
  backoffBaseMs?: number
  /** Backoff cap. Default 60,000 ms. */
  backoffMaxMs?: number
  /** Longest `Retry-After` honoured. Default 3,600,000 ms (an hour). */
  maxRetryAfterMs?: number
  /**
   * Default: the global timers; ages (the spool's oldest) on epoch ms that do not step with the
   * system clock (the time at start counted on by the monotonic clock), so a clock set forward or
   * back while the relay runs does not move them; times shown (`lastSuccessAt`, `lastError.at`,
   * `deadLetteredAt`) on the system clock, as the logs and the flags status are.
   */
  clock?: ForwarderClock
  /** Default `Math.random` (the jitter). */
  random?: () => number
  /** Default the global `fetch`. */
  fetch?: typeof fetch
  /** Where events the sink refuses for good are kept. Default none: they are dropped (counted, logged). */
  deadLetter?: DeadLetter
  /**
   * Told about each request's outcome (metrics), and of events that left the spool without one:
   * unreadable lines skipped (`dropped`), segments gone from outside (`lost`). Default: none.
   */
  onAttempt?: (outcome: ForwardOutcome, events: number) => void
  /** Where failures, refusals and recoveries are reported. Required. */
  log: ServerLogger
}

/** The forwarder's `batchSize` when none is given. */
export const DEFAULT_BATCH_SIZE = 2000
