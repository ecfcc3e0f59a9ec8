// The "serving … at URL" line (bf8cd44: written at every --log-level, as an info line) as an
// orchestrator reads it, and the command's usage errors and help under --log-format json (2f7f4a6).
// Run as the built command.
import { spawn } from 'node:child_process'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { relay } from './log-relay'
import { tempDir } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))

function run(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of Object.keys(env)) if (name.startsWith('HOLDFAST_')) delete env[name]
  const child = spawn(process.execPath, [join(root, 'packages/server/dist/bin.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (chunk) => (out += chunk))
  child.stderr!.on('data', (chunk) => (err += chunk))
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('close', (code) => resolve({ code, out, err })))
}

describe('--log-level error', () => {
  for (const format of ['text', 'json'] as const) {
    it(`--log-format ${format}: the serving line and nothing else, from start to a SIGTERM's exit 0`, async () => {
      const server = await relay(['--flags', 'examples/flags.json', '--log-level', 'error', '--log-format', format])
      await fetch(`${server.url}/readyz`)
      server.child.kill('SIGTERM')
      expect(await server.exited).toBe(0)
      const lines = server.output().split('\n').filter((line) => line !== '')
      expect(lines).toHaveLength(1)
      if (format === 'text') expect(lines[0]).toBe(`[holdfast-server] serving examples/flags.json at ${server.url}`)
      else expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: `serving examples/flags.json at ${server.url}` })
    }, 30_000)
  }
})

describe('the serving line names the flags file as given', () => {
  it('--log-format text: a file name holding a line break stays inside the one line', async () => {
    const file = join(await tempDir(), 'flags\n[holdfast-server] forged.json')
    await copyFile(join(root, 'examples/flags.json'), file)
    const server = await relay(['--flags', file])
    const lines = server.output().split('\n')
    expect(lines.filter((line) => line.startsWith('[holdfast-server] forged'))).toEqual([])
    expect(lines.find((line) => line.includes(' at http'))).toMatch(/^\[holdfast-server\] serving .*flags\\n\[holdfast-server\] forged\.json at http/)
  }, 30_000)
})

describe('usage errors and help with --log-format json', () => {
  it('a bad --port: exit 2, one JSON line, no usage text', async () => {
    const { code, err, out } = await run(['--flags', 'examples/flags.json', '--log-format', 'json', '--port', 'x'])
    expect(code).toBe(2)
    expect(out).toBe('')
    const lines = err.split('\n').filter((line) => line !== '')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', msg: expect.stringContaining('--port') })
  }, 30_000)

  it('an unknown option before --log-format is read: exit 2 as before', async () => {
    const { code } = await run(['--no-such-option', '--log-format', 'json'])
    expect(code).toBe(2)
  }, 30_000)

  it('--help: the usage as text on stdout, exit 0', async () => {
    const { code, out } = await run(['--help', '--log-format', 'json'])
    expect(code).toBe(0)
    expect(out).toMatch(/^Usage|holdfast-server/m)
    expect(() => JSON.parse(out.split('\n')[0]!)).toThrow()
  }, 30_000)
})
