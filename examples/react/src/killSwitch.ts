/**
 * The demo's kill switch control (scripts/demo/killSwitch.mjs), served by the demo's own app
 * server next to the page: it edits the flag server's working copy of the flags file, so the
 * change reaches every tab and every user through the flag server, like a real flag change.
 */
export interface KillSwitchState {
  /** What the flag server's flags file says now. */
  on: boolean
  /** After a change: whether the flag server was seen serving it before the answer. */
  confirmed?: boolean
}

const URL_PATH = '/api/kill-switch'

/** Reads what the flags file says. */
export async function getKillSwitch(): Promise<KillSwitchState> {
  return read(await fetch(URL_PATH))
}

/** Turns the kill switch on or off on the server; resolves once the server serves it (or 5 s passed). */
export async function setKillSwitch(on: boolean): Promise<KillSwitchState> {
  return read(await fetch(URL_PATH, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ on }) }))
}

async function read(response: Response): Promise<KillSwitchState> {
  if (!response.ok) throw new Error(`${URL_PATH} answered ${response.status} (it exists under \`npm run demo\` only)`)
  return (await response.json()) as KillSwitchState
}
