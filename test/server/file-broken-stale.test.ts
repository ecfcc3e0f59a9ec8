// `--flags FILE` that breaks keeps serving the previous definitions (CONTRACT §8), but those no
// longer match the file the operator wrote: the answers say so (`metadata.holdfast.stale`), as a
// `--flags-url` whose document breaks does, and the status says it too.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { liveClient } from '../support/streamingOfrep'
import { evaluate, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags } from './relay-fakes'

async function fileServer() {
  const file = join(await tempDir(), 'flags.json')
  const good = JSON.stringify(booleanFlags(4))
  await writeFile(file, good)
  const server = await startServer({ flags: file })
  const holdfast = async () => ((await (await evaluate(server, { targetingKey: 'u' })).json()) as { metadata: { holdfast: { stale: boolean; source: string } } }).metadata.holdfast
  const status = async () => (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { stale: boolean; upstream: { lastError?: { message: string } } }
  const metrics = async () => (await fetch(`${server.url}/metrics`)).text()
  return { file, good, server, holdfast, status, metrics }
}

describe('a flags file that breaks', () => {
  for (const [what, text] of [
    ['invalid JSON', '{ "flags": '],
    ['emptied', JSON.stringify({ flags: {} })],
    ['gutted (3 of 4 flags gone)', JSON.stringify(booleanFlags(1))],
  ] as const) {
    it(`${what}: the previous flags are served marked stale, the status says so; a fix makes them fresh`, async () => {
      const { file, good, holdfast, status, metrics } = await fileServer()
      expect(await holdfast()).toMatchObject({ source: 'file', stale: false })
      expect(await metrics()).toMatch(/^holdfast_relay_stale 0$/m)

      await writeFile(file, text)
      // Before: still `stale: false` (and status `stale: false`) while the file said otherwise.
      await waitFor(async () => (await status()).upstream.lastError !== undefined, 3000)
      expect(await holdfast()).toMatchObject({ source: 'file', stale: true })
      expect(await status()).toMatchObject({ stale: true, upstream: { lastError: { message: expect.stringContaining(file) } } })
      // /metrics says what the status says (before: no holdfast_relay_stale in this mode at all,
      // so an alert on it never fired for a broken file). No upstream: none of its metrics but its state.
      const broken = await metrics()
      expect(broken).toMatch(/^holdfast_relay_stale 1$/m)
      expect(broken).toMatch(/^holdfast_relay_ready 1$/m)
      expect(broken).toMatch(/^holdfast_relay_upstream_state\{state="none"\} 1$/m)
      expect(broken).not.toMatch(/^holdfast_relay_last_success_timestamp_seconds /m)

      // The operator puts the file back as it was: the same definitions, confirmed again.
      await writeFile(file, good)
      await waitFor(async () => !(await status()).stale, 3000)
      expect(await holdfast()).toMatchObject({ source: 'file', stale: false })
      expect(await metrics()).toMatch(/^holdfast_relay_stale 0$/m)
    })
  }

  it('a browser client reading the server says stale (UPSTREAM_STALE) while the file is broken', async () => {
    const { file, good, server, status } = await fileServer()
    const cleanup: Array<() => unknown> = []
    try {
      const client = liveClient(server.url, 'file-broken', cleanup, { liveUpdates: false })
      await client.start()
      expect(client.getStatus()).toMatchObject({ state: 'ready' })
      await writeFile(file, '<html>not flags</html>')
      await waitFor(async () => (await status()).stale, 3000)
      await client.refresh()
      expect(client.getStatus()).toMatchObject({ state: 'stale', error: { code: 'UPSTREAM_STALE' } })
      expect(client.getGate('f1')).toBe(true)
      await writeFile(file, good)
      await waitFor(async () => !(await status()).stale, 3000)
      await client.refresh()
      expect(client.getStatus()).toMatchObject({ state: 'ready' })
    } finally {
      await Promise.all(cleanup.map((close) => close()))
    }
  })
})
