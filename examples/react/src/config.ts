/**
 * Where the flag server is. The demo's static server injects it at runtime (so any port works);
 * `npm run dev` reads VITE_HOLDFAST_FLAGS_URL, else the flag server's default address.
 */
export const FLAGS_URL: string = (
  window.__HOLDFAST_DEMO__?.flagsUrl ??
  import.meta.env.VITE_HOLDFAST_FLAGS_URL ??
  'http://127.0.0.1:8787'
).replace(/\/+$/, '')

/** Where the client posts events: the flag server's Holdfast events sink. */
export const EVENTS_URL = `${FLAGS_URL}/holdfast/v1/events`

/**
 * True when `npm run demo` put the relay between this page and an upstream flag service: the page
 * then shows the upstream's outage switch and the relay's status.
 */
export const RELAY: boolean = window.__HOLDFAST_DEMO__?.relay === true
