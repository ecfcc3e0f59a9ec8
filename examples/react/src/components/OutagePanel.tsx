import { useEffect, useState } from 'react'
import { useFlagClient } from '@holdfast/react'
import { RELAY } from '../config'
import { getOutage, OUTAGE_MODES, SERVER_OUTAGE_URL, setOutage, UPSTREAM_OUTAGE_URL, type OutageState } from '../outage'

/**
 * The outage switch: sets a demo server's simulated outage, then asks the client to refresh at
 * once (instead of waiting for the 5 s poll) so the effect shows right away. With the relay there
 * are two switches: the flag server the browser talks to (the relay), and the upstream flag
 * service behind it.
 */
export function OutagePanel() {
  return (
    <section className="panel outage">
      <h2>Outage switch</h2>
      <p className="muted small">
        Break {RELAY ? 'either server' : 'the flag server'} on purpose. The page keeps its values, says they are stale, and recovers on its
        own.
      </p>
      <OutageRow
        url={SERVER_OUTAGE_URL}
        testIdPrefix="outage"
        label={RELAY ? 'the relay (the browser’s flag server)' : undefined}
        withEvents
      />
      {RELAY && <OutageRow url={UPSTREAM_OUTAGE_URL} testIdPrefix="upstream-outage" label="the upstream flag service (behind the relay)" />}
    </section>
  )
}

function OutageRow({ url, testIdPrefix, label, withEvents = false }: { url: string; testIdPrefix: string; label?: string; withEvents?: boolean }) {
  const client = useFlagClient()
  const [outage, setState] = useState<OutageState | undefined>()
  const [problem, setProblem] = useState<string | undefined>()

  // Polled, so a change made elsewhere (curl, a test, another tab) shows here too.
  useEffect(() => {
    const read = () =>
      getOutage(url).then(
        (state) => {
          setState(state)
          setProblem(undefined)
        },
        (e: Error) => setProblem(`cannot reach the demo controls: ${e.message}`),
      )
    void read()
    const timer = setInterval(read, 2000)
    return () => clearInterval(timer)
  }, [url])

  const change = async (next: Partial<OutageState>) => {
    // Show the change at once (a checkbox must flip on click); the server's answer then settles it.
    setState((current) => current && { ...current, ...next })
    try {
      setState(await setOutage(next, url))
      setProblem(undefined)
    } catch (e) {
      setProblem(`cannot reach the demo controls: ${(e as Error).message}`)
      return
    }
    if (next.mode !== undefined) void client.refresh()
    if (next.events === false) void client.flush()
  }

  return (
    <div className="outage-row">
      {label && <h3 className="small">{label}</h3>}
      <div className="buttons" role="group" aria-label={`${label ?? 'flag server'} outage`}>
        {OUTAGE_MODES.map(({ mode, label: text, about }) => (
          <button
            key={mode}
            data-testid={`${testIdPrefix}-${mode}`}
            className={outage?.mode === mode ? 'mode active' : 'mode'}
            aria-pressed={outage?.mode === mode}
            title={about}
            onClick={() => void change({ mode })}
          >
            {text}
          </button>
        ))}
      </div>
      {withEvents && (
        <label className="toggle">
          <input
            type="checkbox"
            data-testid={`${testIdPrefix}-events`}
            checked={outage?.events ?? false}
            onChange={(e) => void change({ events: e.target.checked })}
          />
          events endpoint fails too (503)
        </label>
      )}
      <p className="small">
        now: <code data-testid={`${testIdPrefix}-current`}>{outage ? outage.mode : '…'}</code>
        {outage?.events && <span className="warn"> + events failing</span>}
        {' — '}
        <span className="muted">{OUTAGE_MODES.find((m) => m.mode === outage?.mode)?.about}</span>
        {problem && (
          <span data-testid={`${testIdPrefix}-problem`} className="error-code">
            {' '}
            {problem}
          </span>
        )}
      </p>
    </div>
  )
}
