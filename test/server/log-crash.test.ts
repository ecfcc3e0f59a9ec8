// A crash of the holdfast-server command (a bug: an exception nothing caught, a promise rejected
// with nothing to take it), as an operator's log shipper sees it: the error as one line of the
// chosen --log-format, after every line written before it (a reader that stalled gets them late),
// and exit 1. The crash is injected by a module preloaded into the built command
// (fixtures/crashHook.mjs); no hook of the kind is in the package.
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const hook = fileURLToPath(new URL('./fixtures/crashHook.mjs', import.meta.url))
const FILLER = 500_000
const kills: Array<() => void> = []
afterEach(() => kills.splice(0).forEach((kill) => kill()))

/** Starts the command, stalls the reader of stderr, crashes it, then reads stderr again. */
async function crash(how: 'throw' | 'reject', format: 'text' | 'json') {
  const env: NodeJS.ProcessEnv = { ...process.env, CRASH: how, FILLER: String(FILLER) }
  for (const name of Object.keys(env)) if (name.startsWith('HOLDFAST_')) delete env[name]
  const child = spawn(process.execPath, ['--import', hook, join(root, 'packages/server/dist/bin.js'), '--flags', 'examples/flags.json', '--port', '0', '--log-format', format], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  kills.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let out = ''
  child.stdout!.on('data', (chunk) => (out += chunk))
  for (const end = Date.now() + 15_000; !/serving .* at http/.test(out); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`not started:\n${out}`)
  }
  // stderr is not read until well after the crash: the filler fills the pipe and waits in the process.
  child.kill('SIGUSR2')
  await new Promise((r) => setTimeout(r, 500))
  let err = ''
  child.stderr!.on('data', (chunk) => (err += chunk))
  const code = await exited
  return { code, lines: err.split('\n').filter((line) => line !== '') }
}

describe('a crash of holdfast-server', () => {
  for (const how of ['throw', 'reject'] as const) {
    it(`${how === 'throw' ? 'an uncaught exception' : 'an unhandled rejection'}, --log-format json: every line waiting is written, then the error as one JSON line, exit 1`, async () => {
      const { code, lines } = await crash(how, 'json')
      expect(code).toBe(1)
      const entries = lines.map((line) => JSON.parse(line) as Record<string, string>)
      expect(entries[0]!.filler).toHaveLength(FILLER)
      expect(entries).toHaveLength(2)
      expect(entries[1]).toMatchObject({ level: 'error', msg: expect.stringMatching(/^crashed \((uncaught exception|unhandled rejection)\): Error: injected crash/) })
      // Its stack as lines (`jq -r .msg` prints them so), escaped by JSON alone.
      expect(entries[1]!.msg).toMatch(/^[^\n]*injected crash\n {4}at .*crashHook\.mjs/)
    }, 30_000)
  }

  it('a crash of the snapshot subcommand, HOLDFAST_LOG_FORMAT=json: one JSON line, exit 1', async () => {
    // A source that takes the request and never answers: the subcommand waits (its timeout, 10 s).
    const hung = createServer(() => {})
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
    kills.push(() => hung.close())
    const env: NodeJS.ProcessEnv = { ...process.env, CRASH: 'throw', FILLER: '10', HOLDFAST_LOG_FORMAT: 'json' }
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/flags.json`
    const child = spawn(process.execPath, ['--import', hook, join(root, 'packages/server/dist/bin.js'), 'snapshot', '--flags-url', url, '--out', join(await tempDir(), 'flags.json')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    kills.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    let output = ''
    child.stdout!.on('data', (chunk) => (output += chunk))
    child.stderr!.on('data', (chunk) => (output += chunk))
    await new Promise<void>((resolve) => hung.once('connection', () => resolve()))
    child.kill('SIGUSR2')
    expect(await exited).toBe(1)
    const entries = output.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, string>)
    expect(entries.at(-1)).toMatchObject({ level: 'error', msg: expect.stringMatching(/^crashed \(uncaught exception\): Error: injected crash\n/) })
  }, 30_000)

  it('--log-format text: the error and its stack as one line, exit 1', async () => {
    const { code, lines } = await crash('throw', 'text')
    expect(code).toBe(1)
    expect(JSON.parse(lines[0]!).filler).toHaveLength(FILLER)
    expect(lines).toHaveLength(2)
    expect(lines[1]).toMatch(/^\[holdfast-server\] crashed \(uncaught exception\): Error: injected crash\\n {4}at .*crashHook\.mjs/)
  }, 30_000)
})
