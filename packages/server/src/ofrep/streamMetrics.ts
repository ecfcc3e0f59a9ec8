// The event stream's figures on /metrics, read from the hub at each scrape.
import { Counter, Gauge, type Registry } from 'prom-client'
import type { StreamHub, StreamRefusal } from './streamHub'

/**
 * Adds the stream's figures to a Prometheus registry: `holdfast_stream_connections` (open now),
 * `holdfast_stream_notices_total` (notices written, one per stream per change) and
 * `holdfast_stream_refused_total{reason}` (streams refused 503: `max-streams`, `per-client`). A
 * registry that already has them (shared by two handlers) keeps the first handler's.
 */
export function registerStreamMetrics(registry: Registry, hub: StreamHub): void {
  if (!registry.getSingleMetric('holdfast_stream_connections')) {
    new Gauge({
      name: 'holdfast_stream_connections',
      help: 'Event streams (SSE) open now.',
      registers: [registry],
      collect() {
        this.set(hub.connections())
      },
    })
  }
  if (!registry.getSingleMetric('holdfast_stream_notices_total')) {
    let reported = 0
    new Counter({
      name: 'holdfast_stream_notices_total',
      help: 'Change notices written to event streams (one per stream per change).',
      registers: [registry],
      collect() {
        const sent = hub.sent()
        if (sent > reported) this.inc(sent - reported)
        reported = sent
      },
    })
  }
  if (!registry.getSingleMetric('holdfast_stream_refused_total')) {
    const reported: Record<StreamRefusal, number> = { 'max-streams': 0, 'per-client': 0 }
    new Counter({
      name: 'holdfast_stream_refused_total',
      help: 'Event streams refused 503, by reason: max-streams (every stream taken), per-client (the client holds --max-streams-per-client).',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        const refused = hub.refused()
        for (const reason of ['max-streams', 'per-client'] as const) {
          // Both series from the start, so a rate() over them has a zero to start from.
          this.inc({ reason }, refused[reason] - reported[reason])
          reported[reason] = refused[reason]
        }
      },
    })
  }
}
