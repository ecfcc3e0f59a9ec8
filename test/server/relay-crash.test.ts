// kill -9 of a real relay process in the middle of a stream of upstream changes: whatever moment
// the kill lands on, the data dir it leaves is loadable, and what a restarted relay serves is
// exactly one of the documents the upstream sent (never a mix, never a torn one).
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { evaluate, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { startUpstream } from './relay-fakes'

const root = fileURLToPath(new URL('../..', import.meta.url))
const children: ChildProcess[] = []
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

const FLAGS = 200

/** Generation `n` of the upstream: every flag's value says `n`, so a mix of two would show. */
function generation(n: number) {
  const flags: Record<string, unknown> = {}
  for (let i = 0; i < FLAGS; i++) flags[`flag-${i}`] = { state: 'ENABLED', variants: { v: `gen-${n}`, other: `padding-${'x'.repeat(40)}` }, defaultVariant: 'v' }
  return { flags }
}

function startRelayProcess(upstreamUrl: string, dataDir: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'packages/server/src/bin.ts', '--flags-url', `${upstreamUrl}/flags.json`, '--poll-interval', '0.05', '--data-dir', dataDir, '--port', '0'],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const url = async () => {
    await waitFor(() => /serving .* at http:\/\/\S+/.test(output) || child.exitCode !== null, 30_000)
    const match = output.match(/serving .* at (http:\/\/\S+)/)
    if (!match) throw new Error(`the relay did not start:\n${output}`)
    return match[1]
  }
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
  return { child, url, exited, output: () => output }
}

describe('kill -9 in the middle of a stream of upstream changes', () => {
  it('leaves a data dir from which a restart serves one whole upstream document', async () => {
    const dataDir = await tempDir()
    let n = 0
    const served = new Set<string>()
    // Every poll gets a new document: the relay writes a generation per poll.
    const upstream = await startUpstream(() => {
      n++
      served.add(`gen-${n}`)
      return { document: generation(n), etag: false }
    })

    for (let round = 0; round < 3; round++) {
      const relay = startRelayProcess(upstream.url, dataDir)
      const url = await relay.url()
      const startedAt = n
      // Let several generations be written, then kill at an arbitrary moment of the stream.
      await waitFor(async () => {
        const status = (await (await fetch(`${url}/holdfast/v1/status`)).json()) as { dataDir?: { lastGeneration?: number } }
        return n - startedAt >= 5 && (status.dataDir?.lastGeneration ?? 0) > 0
      }, 30_000)
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 60)))
      relay.child.kill('SIGKILL')
      expect(await relay.exited).toBe('SIGKILL')
    }

    // The upstream is gone now: the restarted relay has only its data dir.
    upstream.set('reset')
    const restarted = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, dataDir, pollIntervalSeconds: 3600, logger: recordingLogger() })
    const response = await evaluate(restarted, { targetingKey: 'u' })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { flags: Array<{ key: string; value: string }>; metadata: { holdfast: { source: string; stale: boolean } } }
    expect(body.metadata.holdfast).toMatchObject({ source: 'data-dir', stale: true })
    expect(body.flags).toHaveLength(FLAGS)
    const values = new Set(body.flags.map((f) => f.value))
    expect(values.size).toBe(1)
    expect(served.has([...values][0])).toBe(true)
  }, 120_000)
})
