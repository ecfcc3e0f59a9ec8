import { useFlagClient, useFlagStatus } from '@holdfast/react'
import { Age } from './Age'
import { Badge } from './Badge'

const MEANING = {
  loading: 'no values yet; the first request is on its way',
  ready: 'values in hand, the latest request succeeded',
  stale: 'the latest request failed: serving the last known good values',
  error: 'credentials or context rejected, or nothing to serve',
} as const

/** The client's status: state, where the values came from, the last success and the last error. */
export function StatusPanel() {
  const client = useFlagClient()
  const status = useFlagStatus()
  return (
    <section className="panel">
      <h2>Client status</h2>
      <dl className="facts">
        <dt>state</dt>
        <dd>
          <Badge value={status.state} testId="status-state" />
          <div className="muted small meaning">
            {status.state === 'stale' && status.source === 'fallback'
              ? 'the latest request failed: serving the built-in fallback values'
              : status.error?.code === 'UPSTREAM_STALE'
                ? 'the relay answered, but its upstream is down: these are its last known good values'
                : MEANING[status.state]}
          </div>
        </dd>
        <dt>source</dt>
        <dd>
          <Badge value={status.source} testId="status-source" />
        </dd>
        <dt>last success</dt>
        <dd>
          <Age at={status.lastSuccessAt} testId="status-last-success" />
          {status.lastSuccessAt === undefined && <span className="muted small"> (none since this page loaded)</span>}
        </dd>
        <dt>error</dt>
        {/* Room for a two-line message is kept when there is none, so the page does not jump when one comes. */}
        <dd className="error-slot">
          <span data-testid="status-error" className={status.error ? 'error-code' : 'muted'}>
            {status.error ? status.error.code : '—'}
          </span>
          {status.error && (
            <div data-testid="status-error-message" className="muted small" title={status.error.message}>
              {status.error.message}
            </div>
          )}
        </dd>
        <dt>storage</dt>
        <dd>
          <code data-testid="status-storage">{status.storage}</code>
        </dd>
      </dl>
      <div className="buttons">
        <button data-testid="refresh" className="secondary" onClick={() => void client.refresh()}>
          Refresh now
        </button>
      </div>
    </section>
  )
}
