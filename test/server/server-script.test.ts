// `npm run server -- --flags examples/flags.json`, the documented way to start the reference
// server from a clone, run from a copy of the repository in which nothing was ever built: it must
// build what it needs and serve on the first try, then start without rebuilding, and rebuild after
// a source edit. (`npx holdfast-server` cannot do this in a clone: npm links a bin only when its
// file exists at install time, before dist/ does, and otherwise asks the public registry.)
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, rmSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeClone } from './clone'

const children: ChildProcess[] = []
let clone: string

function runServer(cwd: string) {
  // What `npm run server -- …` runs, with npm's INIT_CWD: the directory the command was typed in.
  const child = spawn(process.execPath, ['scripts/server.mjs', '--flags', 'examples/flags.json', '--port', '0'], {
    cwd,
    env: { ...process.env, INIT_CWD: cwd, npm_lifecycle_event: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const url = async (timeoutMs = 120_000): Promise<string> => {
    const started = Date.now()
    while (Date.now() - started < timeoutMs) {
      const match = output.match(/serving .* at (http:\/\/\S+)/)
      if (match) return match[1]
      if (child.exitCode !== null) throw new Error(`exited early:\n${output}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`no URL printed after ${timeoutMs} ms:\n${output}`)
  }
  return { child, url, exited, output: () => output }
}

async function killSwitch(url: string): Promise<unknown> {
  const response = await fetch(`${url}/ofrep/v1/evaluate/flags`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ context: { targetingKey: 'first-try' } }),
  })
  expect(response.status).toBe(200)
  const body = (await response.json()) as { flags: Array<{ key: string; value?: unknown }> }
  return body.flags.find((flag) => flag.key === 'checkout-kill-switch')?.value
}

async function stop(run: ReturnType<typeof runServer>) {
  run.child.kill('SIGTERM')
  expect(await run.exited).toBe(0)
}

beforeAll(() => {
  clone = makeClone()
})
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  if (clone) rmSync(clone, { recursive: true, force: true })
})

describe('npm run server (scripts/server.mjs) from a fresh clone', () => {
  it('builds the packages when dist/ is absent and serves the example flags on the first try', { timeout: 180_000 }, async () => {
    expect(existsSync(join(clone, 'packages/server/dist'))).toBe(false)
    const first = runServer(clone)
    const url = await first.url()
    expect(first.output()).toMatch(/building the packages first \(packages\/server\/dist\/bin\.js is missing\)/)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect(await killSwitch(url)).toBe(false)
    await stop(first)
    expect(existsSync(join(clone, 'packages/server/dist/bin.js'))).toBe(true)

    // dist/ is current now: no second build.
    const second = runServer(clone)
    expect(await killSwitch(await second.url())).toBe(false)
    expect(second.output()).not.toMatch(/building/)
    await stop(second)

    // A source edit after the build (here: a newer mtime) makes the script build again.
    const later = new Date(Date.now() + 60_000)
    utimesSync(join(clone, 'packages/server/src/bin.ts'), later, later)
    const third = runServer(clone)
    expect(await killSwitch(await third.url())).toBe(false)
    expect(third.output()).toMatch(/building the packages first \(packages\/server\/src changed since the last build\)/)
    await stop(third)
  })
})
