import { useEffect, useState } from 'react'
import { useFlagClient } from '@holdfast/react'
import { getOutage, OUTAGE_MODES, setOutage, type OutageState } from '../outage'

/**
 * The outage switch: sets the demo flag server's simulated outage, then asks the client to
 * refresh at once (instead of waiting for the 5 s poll) so the effect shows right away.
 */
export function OutagePanel() {
  const client = useFlagClient()
  const [outage, setState] = useState<OutageState | undefined>()
  const [problem, setProblem] = useState<string | undefined>()

  // Polled, so a change made elsewhere (curl, a test, another tab) shows here too.
  useEffect(() => {
    const read = () =>
      getOutage().then(
        (state) => {
          setState(state)
          setProblem(undefined)
        },
        (e: Error) => setProblem(`cannot reach the demo controls: ${e.message}`),
      )
    void read()
    const timer = setInterval(read, 2000)
    return () => clearInterval(timer)
  }, [])

  const change = async (next: Partial<OutageState>) => {
    // Show the change at once (a checkbox must flip on click); the server's answer then settles it.
    setState((current) => current && { ...current, ...next })
    try {
      setState(await setOutage(next))
      setProblem(undefined)
    } catch (e) {
      setProblem(`cannot reach the demo controls: ${(e as Error).message}`)
      return
    }
    if (next.mode !== undefined) void client.refresh()
    if (next.events === false) void client.flush()
  }

  return (
    <section className="panel outage">
      <h2>Outage switch</h2>
      <p className="muted small">
        Break the flag server on purpose. The page keeps its values, says they are stale, and recovers on its own.
      </p>
      <div className="buttons" role="group" aria-label="flag server outage">
        {OUTAGE_MODES.map(({ mode, label, about }) => (
          <button
            key={mode}
            data-testid={`outage-${mode}`}
            className={outage?.mode === mode ? 'mode active' : 'mode'}
            aria-pressed={outage?.mode === mode}
            title={about}
            onClick={() => void change({ mode })}
          >
            {label}
          </button>
        ))}
      </div>
      <label className="toggle">
        <input
          type="checkbox"
          data-testid="outage-events"
          checked={outage?.events ?? false}
          onChange={(e) => void change({ events: e.target.checked })}
        />
        events endpoint fails too (503)
      </label>
      <p className="small">
        server now: <code data-testid="outage-current">{outage ? outage.mode : '…'}</code>
        {outage?.events && <span className="warn"> + events failing</span>}
        {' — '}
        <span className="muted">{OUTAGE_MODES.find((m) => m.mode === outage?.mode)?.about}</span>
      </p>
      {problem && (
        <p data-testid="outage-problem" className="error-code small">
          {problem}
        </p>
      )}
    </section>
  )
}
