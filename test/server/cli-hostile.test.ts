// holdfast-server as an operator meets it: a real child process given hostile option values. Each
// must work as documented or refuse to start (exit code ≠ 0, a message naming the option, no stack
// trace), never start half-configured: up and "serving" while every request is bound to fail.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createFlagServer } from '@holdfast/server'
import { recordingLogger } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))
const SOURCE_BIN = ['--import', 'tsx', 'packages/server/src/bin.ts']
const children: ChildProcess[] = []

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/**
 * Runs the CLI until it exits, or until it says it is serving (then it is killed: it started).
 * Resolves with the exit code (`'started'` for a server that came up) and everything it printed.
 */
function outcome(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null | 'started'; output: string }> {
  const child = spawn(process.execPath, [...SOURCE_BIN, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  return new Promise((resolve) => {
    const take = (chunk: Buffer) => {
      output += chunk
      if (/serving .* at http/.test(output)) {
        child.kill('SIGKILL')
        resolve({ code: 'started', output })
      }
    }
    child.stdout!.on('data', take)
    child.stderr!.on('data', take)
    child.on('exit', (code) => resolve({ code, output }))
  })
}

const UPSTREAM = ['--upstream', 'http://127.0.0.1:1', '--port', '0']

describe('holdfast-server refuses what would start it half-configured', { timeout: 60_000 }, () => {
  it('--forward-header naming a header the relay writes itself (Content-Type, Content-Length, Host, …) is refused, not forwarded into every upstream request', async () => {
    // Forwarded, the caller's `content-type` went up beside the relay's own `Content-Type`
    // ("application/json, application/json": 415 from the upstream) and its `content-length` did
    // not match the body the relay sends (undici refuses the request): every user got 503 from a
    // relay that had started without a word.
    const names = ['Content-Type', 'content-length', 'Host', 'Transfer-Encoding', 'Connection', 'If-None-Match']
    const runs = await Promise.all(names.map((name) => outcome([...UPSTREAM, '--forward-header', 'Authorization', '--forward-header', name])))
    for (const [i, run] of runs.entries()) {
      expect(run.code, names[i]).toBe(2)
      expect(run.output).toMatch(new RegExp(`--forward-header ${names[i]}: .*cannot be forwarded`, 'i'))
      expect(run.output).not.toMatch(/\n\s+at /)
    }
    // The same in code.
    await expect(createFlagServer({ upstream: 'http://127.0.0.1:1', forwardHeaders: ['X-Tenant', 'Content-Type'], port: 0, logger: recordingLogger() })).rejects.toThrow(
      /forwardHeaders: Content-Type cannot be forwarded/,
    )
    // Ordinary names still start.
    expect((await outcome([...UPSTREAM, '--forward-header', 'Authorization', '--forward-header', 'X-Tenant'])).code).toBe('started')
  })
})
