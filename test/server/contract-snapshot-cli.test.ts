// CONTRACT §9, the snapshot command: `holdfast-server snapshot` refuses an empty, invalid or
// shrunken result (exit code 1, the old file untouched), and the Bootstrap it writes serves as a
// client's `fallback`.
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

describe('§9 holdfast-server snapshot (the built binary): exit code 1, the old file untouched', () => {
  const BIN = join(process.cwd(), 'packages/server/dist/bin.js')
  const run = (args: string[]) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'snapshot', ...args], { timeout: 15_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: stdout + stderr }),
      )
    })

  it('--flags FILE: an emptied, an invalid and a gutted file are refused', async () => {
    const dir = await tempDir()
    const file = join(dir, 'flags.json')
    const out = join(dir, 'flags.snapshot.json')
    await writeFile(file, JSON.stringify(booleanFlags(10)))
    expect((await run(['--flags', file, '--out', out])).code).toBe(0)
    const written = await readFile(out, 'utf8')
    for (const text of ['{"flags": {}}', '{"flags": {"f0": {"state": "ENA', '<html>', JSON.stringify(booleanFlags(3))]) {
      await writeFile(file, text)
      const result = await run(['--flags', file, '--out', out])
      expect(result.code, text.slice(0, 30)).toBe(1)
      expect(await readFile(out, 'utf8'), text.slice(0, 30)).toBe(written)
    }
  })

  it('--upstream URL --context JSON: an empty, an HTML, an invalid and a shrunken answer are refused', async () => {
    const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `f${i}`, value: true, reason: 'STATIC' }))
    const upstream = await startUpstream({ ofrep: () => ({ flags: entries(6) }) })
    const out = join(await tempDir(), 'fallback.json')
    const args = ['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out]
    expect((await run(args)).code).toBe(0)
    const written = await readFile(out, 'utf8')
    for (const behaviour of [
      { status: 200, json: { flags: [] } },
      { status: 200, text: '<!doctype html><title>Sign in</title>', contentType: 'text/html' },
      { status: 200, text: '{"flags": [', contentType: 'application/json' },
      { status: 200, json: {} },
      { ofrep: () => ({ flags: entries(2) }) },
    ] as const) {
      upstream.set(behaviour)
      const result = await run(args)
      expect(result.code, JSON.stringify(behaviour)).toBe(1)
      expect(await readFile(out, 'utf8')).toBe(written)
    }
  })
})

describe('§9 snapshot --upstream --context writes a Bootstrap usable as fallback', () => {
  it('a client given it as `fallback`, its flag service down, shows its values', async () => {
    const upstream = await startUpstream({ ofrep: () => ({ flags: [{ key: 'limit', value: 5, reason: 'STATIC', variant: 'five' }, { key: 'banner', value: { text: 'hi' }, reason: 'STATIC' }] }) })
    const out = join(await tempDir(), 'fallback.json')
    const { runSnapshotCli } = await import('../../packages/server/src/snapshotCli')
    expect(await runSnapshotCli(['--upstream', upstream.url, '--context', '{"targetingKey":"anonymous"}', '--out', out], { out: () => {}, err: () => {} })).toBe(0)
    const { createClient } = await import('@holdfast/core')
    upstream.set({ status: 503, text: 'down' })
    const client = createClient({ url: upstream.url, context: { targetingKey: 'visitor-1' }, storage: 'memory', fallback: JSON.parse(await readFile(out, 'utf8')), refreshOnFocus: false, logger: { warn() {}, error() {} } })
    await client.start()
    expect(client.getValue('limit', 0)).toBe(5)
    expect(client.getConfig('banner')).toEqual({ text: 'hi' })
    expect(client.getDetails('limit', 0)).toMatchObject({ source: 'fallback', variant: 'five' })
    await client.close()
  })
})
