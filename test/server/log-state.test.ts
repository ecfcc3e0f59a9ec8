// What holdfast-server's log says of a state that changes a few times within a minute (an operator
// fixing a flags file, a flapping source): the line that says how things stand now is written, not
// held back for the rest of the 60 s window of its kind. Run as the built process.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { flagsByKey, post, tempDir, waitFor } from './helpers'
import { relay } from './log-relay'

const flags = (n: number) => JSON.stringify({ flags: { step: { state: 'ENABLED', variants: { v: n }, defaultVariant: 'v' } } })

describe('a state that changes within the window of its kind', () => {
  it('an operator fixing a flags file six times in a minute: the log says what is served, within 4 s', async () => {
    const file = join(await tempDir(), 'flags.json')
    await writeFile(file, flags(0))
    const server = await relay(['--flags', file])
    const served = async () => (await flagsByKey(await post(`${server.url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } }))).step?.value
    const fileLines = () => server.output().split('\n').filter((line) => line.includes(file))
    for (let i = 1; i <= 6; i++) {
      // A broken edit (refused, the previous flags kept), then the fix.
      await writeFile(file, '{"flags": {')
      await waitFor(() => fileLines().filter((line) => !line.includes(' reloaded ')).length >= i, 3000).catch(() => undefined)
      await writeFile(file, flags(i))
      await waitFor(async () => (await served()) === i, 5000)
    }
    // Served: the sixth fix. The log's last word on the file must say so, not "refused".
    // Said within a few seconds (a kind quiet for 2 s, looked at each second), not 60 s on.
    await waitFor(() => /reloaded /.test(fileLines().at(-1) ?? ''), 4000).catch(() => undefined)
    expect(fileLines().at(-1)).toMatch(/reloaded /)
    expect(fileLines().filter((line) => !/reloaded /.test(line)).length).toBeGreaterThanOrEqual(6)
  }, 30_000)
})
