// The relay's Prometheus metrics. Counters are incremented as things happen (through RelayEvents);
// gauges read the relay's status at scrape time, so they can never drift from what /status says.
import { Counter, Gauge, Registry } from 'prom-client'
import { createAgeReader } from './ageReader'
import type { RelayStatus } from './relayStatus'
import type { RelayEvents } from './relayEvents'

const STATES = ['ok', 'failing', 'unauthorized', 'none'] as const

/**
 * Registers the relay metrics on `registry` and returns the event hooks that feed the counters:
 * - `holdfast_relay_upstream_state{state}`: 1 for the current upstream state, 0 for the others
 * - `holdfast_relay_version_info{version}`: 1 for the version served, the status' `version` (in
 *   proxy mode a hash of every answer held); no series while there is none
 * - `holdfast_relay_ready`: 1 while something is served (what /readyz answers)
 * - `holdfast_relay_served_age_seconds`: seconds since the source last vouched for what is served
 * - `holdfast_relay_stale`: 1 while what is served is not confirmed by the latest attempt
 * - `holdfast_relay_last_success_timestamp_seconds`: the latest usable upstream answer (0: none)
 * - `holdfast_relay_contexts`: contexts held (proxy mode only: no sample in the definitions modes)
 * - `holdfast_relay_reask_contexts{of}`: the latest re-ask round (proxy mode): contexts `held` to
 *   ask, and `asked` (fewer when it ended at an upstream that is down)
 * - `holdfast_relay_reask_duration_seconds`: how long that round took
 * - `holdfast_relay_snapshot_usable`: with `--snapshot`, 1 when it could be used at start, 0 when it
 *   was torn or invalid, or is a values snapshot made with a header the relay does not forward
 *   (not served; the reason is in the status and the log)
 * - `holdfast_relay_data_dir_used`: with `--data-dir`, 1 while it is used, 0 when it is not for the
 *   life of the process (its lock did not answer at start: a hung mount; see the status and the log)
 * - `holdfast_relay_data_dir_skipped_total{reason}`: with `--data-dir`, generations skipped at start
 *   for an older one (`torn`, `corrupt`, `too-large`, `unreadable`, `unusable`, `other-source`), named in the status
 * - `holdfast_relay_breaker_open`: proxy mode, 1 while the breaker on the upstream's health is open
 * - `holdfast_relay_upstream_requests_total{outcome}`, `holdfast_relay_refused_total{reason}`,
 *   `holdfast_relay_data_dir_writes_total{outcome}`, `holdfast_relay_unasked_total{reason}` (proxy
 *   mode: users' requests answered without an upstream request, `breaker` or `paused`)
 * `status` is read at scrape time, so the metrics can be registered before the source exists. Also
 * registered for `--flags FILE` and definitions in code (flagHandler.ts), where the gauges without
 * an upstream (`last_success_timestamp_seconds`, `contexts`) have no sample; with `--flags-url`, `contexts` has none either.
 */
export function registerRelayMetrics(registry: Registry, status: () => RelayStatus | undefined): RelayEvents {
  // A value the relay does not have is no sample. Not `reset()`: on a gauge without labels that
  // puts prom-client's own 0 back, and 0 is a value here (fresh, torn snapshot, hung data dir).
  const none = (g: Gauge) => g.remove()
  const gauge = (name: string, help: string, read: (g: Gauge) => void, labelNames: string[] = []) =>
    registry.registerMetric(new Gauge({ name, help, labelNames, registers: [], collect() { read(this) } }))

  gauge('holdfast_relay_upstream_state', 'Upstream state as the relay sees it: 1 for the current state.', (g) => {
    const current = status()?.upstream.state
    for (const state of STATES) g.set({ state }, state === current ? 1 : 0)
  }, ['state'])
  gauge('holdfast_relay_version_info', 'The version served (1), as in /holdfast/v1/status: the definitions, or in proxy mode every answer held.', (g) => {
    g.reset()
    const version = status()?.version
    if (version) g.set({ version }, 1)
  }, ['version'])
  gauge('holdfast_relay_ready', '1 while flags are being served (what /readyz answers).', (g) => g.set(status()?.ready ? 1 : 0))
  const servedAge = createAgeReader()
  gauge('holdfast_relay_served_age_seconds', 'Seconds since the source last vouched for what is served.', (g) => {
    const s = status()
    if (s?.fetchedAt != null) g.set(servedAge(s.fetchedAt, Date.now()) / 1000)
    else none(g)
  })
  gauge('holdfast_relay_stale', '1 while what is served is not confirmed current by the latest upstream attempt.', (g) => g.set(status()?.stale ? 1 : 0))
  // Never (since start): 0, the epoch, on purpose, unlike the gauges above: `time() - this > N`
  // then fires for a relay that never heard its upstream (one serving its data dir, ready).
  // No upstream at all (`--flags FILE`, definitions in code): no sample, not 0, which would fire that alert for good.
  gauge('holdfast_relay_last_success_timestamp_seconds', 'Epoch seconds of the latest usable upstream answer (0: none since start).', (g) => {
    const s = status()
    if (s?.upstream.state === 'none') return none(g)
    const at = s?.upstream.lastSuccessAt
    g.set(at !== undefined ? at / 1000 : 0)
  })
  // Only proxy mode holds answers per context; the definitions modes evaluate any context and hold
  // none. Their 0 read as "no user reached this relay" on a --flags-url dashboard.
  gauge('holdfast_relay_contexts', 'Contexts whose last good answer is held (proxy mode only).', (g) => {
    const s = status()
    if (s?.mode === 'upstream') g.set(s.contexts ?? 0)
    else none(g)
  })
  gauge('holdfast_relay_reask_contexts', 'The latest round of asking the upstream again for the held contexts (proxy mode): held to ask, and asked.', (g) => {
    const round = status()?.reask
    if (!round) return g.reset()
    g.set({ of: 'held' }, round.contexts)
    g.set({ of: 'asked' }, round.asked)
  }, ['of'])
  gauge('holdfast_relay_reask_duration_seconds', 'How long the latest round of asking the upstream again for the held contexts took (proxy mode).', (g) => {
    const round = status()?.reask
    if (round) g.set(round.durationMs / 1000)
    else none(g)
  })

  gauge('holdfast_relay_snapshot_usable', 'With --snapshot: 1 when it could be used at start, 0 when it was torn or invalid, or a values snapshot made with a header the relay does not forward, and is not served.', (g) => {
    const snapshot = status()?.snapshot
    if (snapshot) g.set(snapshot.usable ? 1 : 0)
    else none(g)
  })

  gauge('holdfast_relay_data_dir_used', 'With --data-dir: 1 while it is used, 0 when its lock did not answer at start (a hung mount) and it is not used until a restart.', (g) => {
    const dataDir = status()?.dataDir
    if (dataDir) g.set(dataDir.unused ? 0 : 1)
    else none(g)
  })

  gauge('holdfast_relay_breaker_open', 'Proxy mode: 1 while the breaker on the upstream health is open (users answered from what is held, or 503, one probe at a time).', (g) => {
    const breaker = status()?.upstream.breaker
    if (breaker) g.set(breaker.state === 'open' ? 1 : 0)
    else none(g)
  })

  // The generations skipped at start, by reason: read from the status, which keeps every one counted
  // (they are only ever added to), so the counter never goes back. No sample while none was skipped.
  registry.registerMetric(new Counter({
    name: 'holdfast_relay_data_dir_skipped_total',
    help: 'With --data-dir: generations skipped at start for an older one (torn, corrupt, too-large, unreadable, unusable, other-source); the status names them in dataDir.skipped.',
    labelNames: ['reason'],
    registers: [],
    collect() {
      this.reset()
      for (const [reason, count] of Object.entries(status()?.dataDir?.skippedBy ?? {})) this.inc({ reason }, count)
    },
  }))

  const requests = new Counter({ name: 'holdfast_relay_upstream_requests_total', help: 'Upstream requests by outcome (ok, not-modified, or the failure kind).', labelNames: ['outcome'], registers: [registry] })
  const refused = new Counter({ name: 'holdfast_relay_refused_total', help: 'Upstream answers or file edits not applied, by reason.', labelNames: ['reason'], registers: [registry] })
  const writes = new Counter({ name: 'holdfast_relay_data_dir_writes_total', help: 'Data-dir generation writes by outcome.', labelNames: ['outcome'], registers: [registry] })
  const unasked = new Counter({ name: 'holdfast_relay_unasked_total', help: 'Proxy mode: requests answered without an upstream request (held values, stale, or 503), by reason: breaker (the upstream is down), paused (429/503 + Retry-After) or silent (no answer to the requests out).', labelNames: ['reason'], registers: [registry] })
  return {
    attempt: (outcome) => requests.inc({ outcome }),
    refused: (reason) => refused.inc({ reason }),
    saved: (ok) => writes.inc({ outcome: ok ? 'ok' : 'failed' }),
    unasked: (reason) => unasked.inc({ reason }),
  }
}
