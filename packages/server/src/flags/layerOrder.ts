// --flags-url --redis: whether the store's copy of the definitions may replace the data-dir or
// snapshot layer this relay serves since its start. A pure decision, so that its cases (the
// store's order known or not, a leader's clock hours ahead) are tested without Redis or a disk.
import type { FlagOrigin } from './flagSource'
import type { UpstreamHealth } from './upstreamHealth'

/** The store's copy, as `SharedDefinitionsOptions['take']` is given it. */
export interface StoreCopy {
  body: string
  /** The store's version of it (its place in the store's order). */
  version: number
  /** Epoch ms of its fetch, on the clock of the relay that polled it. */
  fetchedAt: number
}

/** What this relay knows when a store copy arrives. */
export interface LayerOrder {
  /** What is served: its origin and when it was fetched. Undefined when nothing is. */
  served: { origin: FlagOrigin; fetchedAt: number } | undefined
  /** The exact text served. */
  servedText: string | undefined
  /**
   * What the served data-dir layer knows of the store's order: the store version it was taken
   * with, or the newest one seen before its text was asked for. Undefined: nothing is known (a
   * snapshot, or a relay that never reached the store).
   */
  layerSince: number | undefined
  /** The store version of the leader's latest report of a good poll. */
  vouchedVersion: number | undefined
  /** This relay's view of the upstream. */
  health: Pick<UpstreamHealth, 'state' | 'lastSuccessAt'>
  /** This relay's clock. */
  now: () => number
}

/**
 * Whether the store's `doc` is older than the data-dir or snapshot layer this relay serves since
 * its start: a version it had seen before it asked for the layer's text, or (nothing known of
 * the store's order: a snapshot, or a relay that never reached the store) fetched before it.
 * Taking it would move the relay back (a relay that polled alone while Redis was away, restarted
 * while the upstream is down). The leader's report that it heard the upstream after the layer was
 * made vouches for the store's copy: it is then taken. Where the store's order is known, it
 * decides, not the times: a leader's clock may be hours ahead. False whenever what is served is
 * not such a layer, or is this very text.
 */
export function isOlderThanLayer(doc: StoreCopy, order: LayerOrder): boolean {
  const { served, health } = order
  if (!served || (served.origin !== 'data-dir' && served.origin !== 'snapshot') || doc.body === order.servedText) return false
  if (order.layerSince !== undefined) return doc.version <= order.layerSince && (order.vouchedVersion ?? -Infinity) <= order.layerSince
  if (health.state === 'ok' && health.lastSuccessAt !== undefined && health.lastSuccessAt > served.fetchedAt) return false
  return Math.min(doc.fetchedAt, order.now()) <= served.fetchedAt
}
