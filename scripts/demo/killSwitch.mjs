// The demo's kill switch control: flips `checkout-kill-switch` on the flag server itself, so every
// tab (and every other client) sees it on its next request. It edits the demo's working copy of
// the flags file, which the server watches, exactly as an operator would edit the real one; the
// copy lives in the demo's temporary directory, so examples/flags.json is never touched.
import { readFile, rename, writeFile } from 'node:fs/promises'

/** The flag the control flips. */
export const KILL_SWITCH = 'checkout-kill-switch'

/**
 * A control over `checkout-kill-switch` in the flagd file at `flagsFile`. `confirmUrl` is the
 * OFREP base URL the app reads (the flag server, or the relay in front of it): `set` waits (up to
 * `confirmTimeoutMs`, default 5 s) until that URL serves the new value, so the page's refresh
 * right after sees it. `confirmed: false` means it did not in time (e.g. during an outage: the
 * edit is made and shows once the server answers again).
 */
export function createKillSwitch({ flagsFile, confirmUrl, confirmTimeoutMs = 5000 }) {
  // One edit at a time: two quick clicks must not interleave read-modify-write of the file.
  let chain = Promise.resolve()

  async function readOn() {
    const document = JSON.parse(await readFile(flagsFile, 'utf8'))
    return document.flags?.[KILL_SWITCH]?.defaultVariant === 'on'
  }

  async function write(on) {
    const document = JSON.parse(await readFile(flagsFile, 'utf8'))
    const flag = document.flags?.[KILL_SWITCH]
    if (!flag) throw new Error(`${KILL_SWITCH} is not in ${flagsFile}`)
    flag.defaultVariant = on ? 'on' : 'off'
    // Write a temporary file and rename it over the original: the server never reads half a file.
    const temporary = `${flagsFile}.${process.pid}.tmp`
    await writeFile(temporary, `${JSON.stringify(document, null, 2)}\n`)
    await rename(temporary, flagsFile)
  }

  async function served() {
    const response = await fetch(`${confirmUrl}/ofrep/v1/evaluate/flags`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ context: { targetingKey: 'demo-kill-switch-check' } }),
      signal: AbortSignal.timeout(1000),
    })
    if (!response.ok) return undefined
    const body = await response.json().catch(() => undefined)
    return body?.flags?.find?.((entry) => entry?.key === KILL_SWITCH)?.value
  }

  async function confirm(on) {
    const deadline = Date.now() + confirmTimeoutMs
    while (Date.now() < deadline) {
      if ((await served().catch(() => undefined)) === on) return true
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return false
  }

  return {
    /** `{ on }`: what the flags file says now. */
    async get() {
      return { on: await readOn() }
    },
    /** Sets the kill switch; resolves `{ on, confirmed }` once served (or the timeout passed). */
    set(on) {
      const next = chain.then(async () => {
        await write(on)
        return { on, confirmed: await confirm(on) }
      })
      chain = next.catch(() => {})
      return next
    },
  }
}
