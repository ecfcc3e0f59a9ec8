import { useEventStats, useFlagClient } from '@holdfast/react'

/** The event queue: what waits in IndexedDB, what the server took, what had to be dropped. */
export function EventsPanel() {
  const client = useFlagClient()
  const stats = useEventStats()
  return (
    <section className="panel">
      <h2>Events</h2>
      <div className="counters">
        <Counter label="queued" value={stats.queued} testId="events-queued" warn={stats.queued > 0} />
        <Counter label="sent" value={stats.sent} testId="events-sent" />
        <Counter label="dropped" value={stats.dropped} testId="events-dropped" warn={stats.dropped > 0} />
        <Counter label="retries" value={stats.retries} testId="events-retries" />
      </div>
      <p className="muted small">
        Exposures are logged when a flag is shown; counts are for this page load. Queued events are kept in IndexedDB and sent every 3 s, or retried
        with backoff while the server is down.
      </p>
      <div className="buttons">
        <button data-testid="log-event" onClick={() => client.logEvent('demo-button-clicked', { metadata: { at: Date.now() } })}>
          Log a custom event
        </button>
        <button data-testid="flush-events" className="secondary" onClick={() => void client.flush()}>
          Flush now
        </button>
      </div>
    </section>
  )
}

function Counter({ label, value, testId, warn = false }: { label: string; value: number; testId: string; warn?: boolean }) {
  return (
    <div className={warn ? 'counter warn' : 'counter'}>
      <span data-testid={testId} className="count">
        {value}
      </span>
      <span className="muted small">{label}</span>
    </div>
  )
}
