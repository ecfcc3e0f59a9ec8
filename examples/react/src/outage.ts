import { FLAGS_URL } from './config'

/** The demo flag server's simulated outages (packages/server/src/outage.ts). */
export type OutageMode = 'none' | '503' | 'empty' | 'empty-flags' | 'html' | 'hang'

/** What `/demo/outage` answers: the flags endpoint's mode, and whether events fail too. */
export interface OutageState {
  mode: OutageMode
  events: boolean
  retryAfter?: number
}

/** The modes in the order the page shows them, with what each one looks like from the browser. */
export const OUTAGE_MODES: ReadonlyArray<{ mode: OutageMode; label: string; about: string }> = [
  { mode: 'none', label: 'No outage', about: 'normal answers' },
  { mode: '503', label: '503', about: 'Service Unavailable' },
  { mode: 'empty', label: '{}', about: '200 with an empty object (a broken proxy)' },
  { mode: 'empty-flags', label: '{"flags":[]}', about: '200 with no flags (a backend that lost its data)' },
  { mode: 'html', label: 'HTML', about: '200 text/html (a captive portal)' },
  { mode: 'hang', label: 'Hang', about: 'no answer at all; the client times out' },
]

/** The outage control of the flag server the browser talks to (its `/demo/outage`). */
export const SERVER_OUTAGE_URL = `${FLAGS_URL}/demo/outage`

/** The outage control of the upstream flag service behind the relay, reached through the demo's app server. */
export const UPSTREAM_OUTAGE_URL = '/api/upstream/outage'

/** Reads the current outage from a demo outage control. */
export async function getOutage(url: string = SERVER_OUTAGE_URL): Promise<OutageState> {
  return read(url, await fetch(url))
}

/** Changes the outage (`{ mode }` and/or `{ events }`); resolves with the new state. */
export async function setOutage(change: Partial<OutageState>, url: string = SERVER_OUTAGE_URL): Promise<OutageState> {
  return read(url, await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(change) }))
}

async function read(url: string, response: Response): Promise<OutageState> {
  if (!response.ok) throw new Error(`${url} answered ${response.status}`)
  return (await response.json()) as OutageState
}
