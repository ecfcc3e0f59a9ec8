import { useEffect, useState } from 'react'
import { Age } from './Age'
import { Badge } from './Badge'

/** The relay's `GET /holdfast/v1/status` (CONTRACT §9), as far as this page shows it. */
interface RelayStatus {
  ready: boolean
  source?: string
  version?: string | number | null
  fetchedAt?: number
  upstream?: { state: string; lastSuccessAt?: number; lastError?: unknown }
  refused?: number
}

/** A relay's `lastError` may be a string or an object with a message; show it either way. */
function describe(error: unknown): string | undefined {
  if (error === undefined || error === null) return undefined
  if (typeof error === 'string') return error
  const e = error as { message?: unknown; code?: unknown; kind?: unknown; status?: unknown }
  const text = [e.kind ?? e.code, e.status, e.message].filter((part) => part !== undefined && part !== null).join(' ')
  return text || JSON.stringify(error)
}

/**
 * The relay between this page and the upstream flag service: whether the upstream answers, and how
 * old the values the relay serves are (its `fetchedAt`): during an upstream outage the page keeps
 * working on what the relay held, and this says for how long that has been.
 */
export function RelayPanel() {
  const [status, setStatus] = useState<RelayStatus | undefined>()
  const [problem, setProblem] = useState<string | undefined>()

  useEffect(() => {
    const read = () =>
      fetch('/api/relay/status')
        .then((r) => (r.ok ? (r.json() as Promise<RelayStatus>) : Promise.reject(new Error(`answered ${r.status}`))))
        .then(
          (next) => {
            setStatus(next)
            setProblem(undefined)
          },
          (e: Error) => setProblem(`cannot read the relay's status: ${e.message}`),
        )
    void read()
    const timer = setInterval(read, 1000)
    return () => clearInterval(timer)
  }, [])

  const upstream = status?.upstream
  const lastError = describe(upstream?.lastError)
  return (
    <section className="panel relay">
      <h2>Relay</h2>
      <p className="muted small">
        The browser&apos;s flag server is a relay (<code>holdfast-server --upstream</code>) in front of the upstream flag service; it keeps the
        last known good answers on disk and serves them while the upstream is down.
      </p>
      <dl className="facts inline">
        <dt>upstream</dt>
        <dd>
          <Badge value={upstream?.state ?? '…'} testId="relay-upstream-state" />
        </dd>
        <dt>values fetched</dt>
        <dd>
          <Age at={status?.fetchedAt} testId="relay-fetched-age" />
        </dd>
        <dt>serving from</dt>
        <dd>
          <code data-testid="relay-source">{status?.source ?? '—'}</code>
        </dd>
        <dt>last upstream success</dt>
        <dd>
          <Age at={upstream?.lastSuccessAt} testId="relay-last-success" />
        </dd>
        <dt>refused</dt>
        <dd>
          <code data-testid="relay-refused">{status?.refused ?? 0}</code>
        </dd>
      </dl>
      <p data-testid="relay-last-error" className={lastError ? 'error-code small' : 'muted small'}>
        {lastError ? `last upstream error: ${lastError}` : problem ?? 'the upstream answers'}
      </p>
    </section>
  )
}
