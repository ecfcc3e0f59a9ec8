import { useEffect, useState } from 'react'
import { useFlagClient, useFlagDetails } from '@holdfast/react'
import { getKillSwitch, setKillSwitch, type KillSwitchState } from '../killSwitch'

/**
 * Flips `checkout-kill-switch` on the flag server (by editing its flags file), then refreshes this
 * tab at once. Other tabs, and other users, get it with their next request (the 5 s poll, or when
 * the tab gains focus). During an outage the edit waits on the server and shows once it answers.
 */
export function KillSwitchPanel() {
  const client = useFlagClient()
  const seen = useFlagDetails('checkout-kill-switch', false)
  const [server, setServer] = useState<KillSwitchState | undefined>()
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<string | undefined>()

  // Polled, so a change made in another tab (or with curl) shows here too.
  useEffect(() => {
    const read = () =>
      getKillSwitch().then(
        (state) => {
          setServer((current) => (current?.on === state.on ? current : state))
          setProblem(undefined)
        },
        (e: Error) => setProblem(`cannot reach the kill switch control: ${e.message}`),
      )
    void read()
    const timer = setInterval(read, 2000)
    return () => clearInterval(timer)
  }, [])

  const flip = async () => {
    if (!server) return
    setBusy(true)
    try {
      setServer(await setKillSwitch(!server.on))
      setProblem(undefined)
      void client.refresh()
    } catch (e) {
      setProblem(`cannot reach the kill switch control: ${(e as Error).message}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section className="panel kill-switch">
      <h2>Kill switch, on the server</h2>
      <p className="muted small">
        Edits <code>checkout-kill-switch</code> in the flag server&apos;s flags file: every tab and every user gets it from the server.
      </p>
      <div className="buttons">
        <button data-testid="kill-switch-toggle" className={server?.on ? 'mode active' : 'mode'} disabled={!server || busy} onClick={() => void flip()}>
          {server?.on ? 'Turn the kill switch off' : 'Turn the kill switch on'}
        </button>
      </div>
      <p className="small">
        server: <code data-testid="kill-switch-server">{server ? (server.on ? 'on' : 'off') : '…'}</code>
        {' · '}this tab: <code data-testid="kill-switch-seen">{seen.value ? 'on' : 'off'}</code>{' '}
        <span className="muted">({seen.stale ? 'stale' : 'fresh'}, {seen.source})</span>
      </p>
      {server?.confirmed === false && seen.value !== server.on && (
        <p data-testid="kill-switch-pending" className="warn small">
          The flag server has not served it yet (an outage?): it shows once the server answers again.
        </p>
      )}
      {problem && (
        <p data-testid="kill-switch-problem" className="error-code small">
          {problem}
        </p>
      )}
    </section>
  )
}
