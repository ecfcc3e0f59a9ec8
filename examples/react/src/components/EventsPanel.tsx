import { useEventStats, useFlagClient, useFlagStatus, type EventStats, type Status } from '@holdfast/react'

/**
 * What the event pipeline reports. `retriedRequests` and `lastError` are read when the client
 * provides them; an older client has only `retries` (events × attempts) and no error of its own.
 */
type Stats = EventStats & { retriedRequests?: number; lastError?: { code: string; message: string; httpStatus?: number } }

/** The event queue: what waits in IndexedDB, what the server took, what had to be dropped, and why events wait. */
export function EventsPanel() {
  const client = useFlagClient()
  const stats = useEventStats() as Stats
  const status = useFlagStatus()
  const retried = stats.retriedRequests ?? stats.retries
  return (
    <section className="panel">
      <h2>Events</h2>
      <div className="counters">
        <Counter label="queued" value={stats.queued} testId="events-queued" warn={stats.queued > 0} />
        <Counter label="sent" value={stats.sent} testId="events-sent" />
        <Counter label="dropped" value={stats.dropped} testId="events-dropped" warn={stats.dropped > 0} />
        <Counter
          label={stats.retriedRequests === undefined ? 'retried events' : 'retried requests'}
          value={retried}
          testId="events-retries"
          title="requests that carried events sent before: what the network saw, not events × attempts"
        />
      </div>
      <p data-testid="events-waiting" className={`small waiting ${stats.queued > 0 ? 'warn' : 'muted'}`}>
        {whyWaiting(stats, status)}
      </p>
      <p className="muted small">
        Exposures are logged when a flag is shown. Queued events are kept in IndexedDB and sent every 3 s, or retried with backoff while
        the server is down.
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

/** One sentence: why the queued events have not gone yet. */
export function whyWaiting(stats: Stats, status: Status): string {
  if (stats.queued === 0) return 'Nothing waiting.'
  const n = `${stats.queued} event${stats.queued === 1 ? '' : 's'}`
  const error = stats.lastError
  if (error) {
    const answer = error.httpStatus ? `answered ${error.httpStatus}` : `failed (${error.code})`
    if (error.httpStatus && [401, 403, 404, 405, 410].includes(error.httpStatus)) {
      return `${n} waiting: the events endpoint ${answer}, so its URL or key is wrong. They are kept and retried with backoff.`
    }
    return `${n} waiting: the events endpoint ${answer}: ${error.message}. Retrying with backoff.`
  }
  if (typeof navigator !== 'undefined' && navigator.onLine === false) return `${n} waiting: the browser is offline; they go when it is back.`
  // Without `lastError`, a failed send shows only as retries; the flag status may say why.
  if (stats.retries > 0 && status.error && (status.state === 'stale' || status.state === 'error')) {
    const answer = status.error.httpStatus ? `answers ${status.error.httpStatus}` : `fails (${status.error.code})`
    return `${n} waiting: sends fail while the flag server ${answer} (the events endpoint is on it). Retrying with backoff.`
  }
  if (stats.retries > 0) return `${n} waiting: the last send failed. Retrying with backoff.`
  return `${n} waiting for the next send (every 3 s, or "Flush now").`
}

function Counter({ label, value, testId, warn = false, title }: { label: string; value: number; testId: string; warn?: boolean; title?: string }) {
  return (
    <div className={warn ? 'counter warn' : 'counter'} title={title}>
      <span data-testid={testId} className="count">
        {value}
      </span>
      <span className="muted small">{label}</span>
    </div>
  )
}
