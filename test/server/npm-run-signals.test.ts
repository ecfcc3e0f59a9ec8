// `npm run demo` and `npm run server`, stopped the way a program stops them: SIGINT to the npm
// process it started, and to nothing else (a test harness, a process manager, `kill -INT <pid>`).
// A terminal's Ctrl-C reaches every process of the group at once; a signal to npm alone is
// forwarded by npm to its child, and that child is the `sh -c` npm runs scripts with. Debian's sh
// (dash), waiting on a command, holds a SIGINT until the command ends on its own (it takes it that
// the command got the same one from the terminal): the demo kept running, both ports held, under
// an npm that waited for it for ever.
import { spawn } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { makeClone } from './clone'
import { orHung } from './hung-mount'

const root = fileURLToPath(new URL('../..', import.meta.url))
const groups: number[] = []

/** The processes of a process group still running (zombies, already ended, are not counted). */
function alive(group: number): string[] {
  const found: string[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8')
    } catch {
      continue
    }
    // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so read after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(pgrp) === group && state !== 'Z') found.push(`${name} ${stat.slice(stat.indexOf('('), stat.lastIndexOf(')') + 1)}`)
  }
  return found
}

/** Starts `npm run <args>` as the leader of a process group of its own, as a supervisor would. */
function npmRun(args: string[], { cwd = root, env = process.env }: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const child = spawn('npm', ['run', ...args], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  groups.push(child.pid!)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | string | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)))
  return { child, exited, output: () => output }
}

async function refused(url: string): Promise<boolean> {
  return fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    () => false,
    () => true,
  )
}

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
})

describe('npm run, stopped by SIGINT to the npm process alone', () => {
  it('npm run demo stops everything it started, frees its ports and exits 0', { timeout: 180_000 }, async () => {
    const run = npmRun(['demo', '--', '--no-build', '--port', '0', '--flags-port', '0'])
    await expect.poll(run.output, { timeout: 150_000, interval: 200 }).toMatch(/Ctrl-C to stop/)
    const appUrl = run.output().match(/app +(http:\/\/\S+)/)![1]
    const flagsUrl = run.output().match(/flag server +(http:\/\/\S+)/)![1]
    expect((await fetch(appUrl)).status).toBe(200)

    run.child.kill('SIGINT')
    expect(await orHung(run.exited, 15_000), run.output()).toBe(0)
    expect(run.output()).toContain('Stopping the demo (SIGINT)')
    expect(alive(run.child.pid!)).toEqual([])
    expect(await refused(appUrl)).toBe(true)
    expect(await refused(`${flagsUrl}/healthz`)).toBe(true)
  })

  it('npm run demo stopped while it builds ends the build too, and leaves no temporary directory', { timeout: 60_000 }, async () => {
    // In a clone, so the build cut short is not this repository's dist/ (other tests run it).
    const clone = makeClone()
    const temp = mkdtempSync(join(tmpdir(), 'holdfast-demo-tmp-'))
    dirs.push(clone, temp)
    const run = npmRun(['demo', '--', '--port', '0', '--flags-port', '0'], { cwd: clone, env: { ...process.env, TMPDIR: temp } })
    await expect.poll(run.output, { timeout: 30_000, interval: 50 }).toMatch(/Building Holdfast/)
    // rollup is under way: its process is in the group beside npm and the demo.
    await expect.poll(() => alive(run.child.pid!).length, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(3)

    run.child.kill('SIGINT')
    expect(await orHung(run.exited, 15_000), run.output()).toBe(0)
    expect(run.output()).toContain('stopped (SIGINT) before it started')
    // Before: rollup (and its esbuild) ran on, orphaned, for the rest of the build.
    expect(alive(run.child.pid!)).toEqual([])
    expect(readdirSync(temp)).toEqual([])
  })

  it('npm run server stopped while it builds its packages ends the build and starts nothing', { timeout: 60_000 }, async () => {
    const clone = makeClone()
    dirs.push(clone)
    const run = npmRun(['server', '--', '--flags', 'examples/flags.json', '--port', '0'], { cwd: clone })
    await expect.poll(run.output, { timeout: 30_000, interval: 50 }).toMatch(/building the packages first/)
    await expect.poll(() => alive(run.child.pid!).length, { timeout: 10_000, interval: 50 }).toBeGreaterThanOrEqual(3)

    run.child.kill('SIGINT')
    expect(await orHung(run.exited, 15_000), run.output()).toBe(0)
    expect(run.output()).toContain('SIGINT: the build was stopped; the server was not started')
    expect(run.output()).not.toMatch(/serving/)
    expect(alive(run.child.pid!)).toEqual([])
  })

  it('npm run server drains and exits 0', { timeout: 60_000 }, async () => {
    const run = npmRun(['server', '--', '--flags', 'examples/flags.json', '--port', '0'])
    await expect.poll(run.output, { timeout: 50_000, interval: 100 }).toMatch(/serving .* at http:\/\/\S+/)
    const url = run.output().match(/serving .* at (http:\/\/\S+)/)![1]
    expect((await fetch(`${url}/healthz`)).status).toBe(200)

    run.child.kill('SIGINT')
    expect(await orHung(run.exited, 15_000), run.output()).toBe(0)
    expect(run.output()).toContain('[holdfast-server] SIGINT: draining')
    // One SIGINT is one request to drain, not a second "exit now".
    expect(run.output()).not.toContain('again')
    expect(run.output()).toContain('[holdfast-server] stopped')
    expect(alive(run.child.pid!)).toEqual([])
    expect(await refused(`${url}/healthz`)).toBe(true)
  })
})

describe('npm run server running a command of the CLI, not a server', () => {
  it('npm run server -- snapshot, waiting on an upstream that never answers, is stopped by a SIGINT', { timeout: 60_000 }, async () => {
    // An upstream that takes the connection and never answers: the snapshot waits its --timeout.
    const sockets: Socket[] = []
    const upstream = createServer((socket) => void sockets.push(socket))
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const port = (upstream.address() as { port: number }).port
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-snapshot-signal-'))
    dirs.push(dir)
    try {
      const args = ['snapshot', '--upstream', `http://127.0.0.1:${port}`, '--context', '{"targetingKey":"u1"}', '--out', join(dir, 'values.json'), '--timeout', '600']
      const run = npmRun(['server', '--', ...args])
      await expect.poll(() => sockets.length, { timeout: 50_000, interval: 100 }).toBeGreaterThan(0)

      run.child.kill('SIGINT')
      // Before: the wrapper that makes one Ctrl-C out of two took the SIGINT and handed it to the
      // CLI's handlers, of which a command (snapshot, events) installs none: nothing stopped it
      // until its 600 s timeout, and npm waited with it.
      expect(await orHung(run.exited, 10_000), run.output()).not.toBe('hung')
      expect(alive(run.child.pid!)).toEqual([])
      expect(readdirSync(dir)).toEqual([])
    } finally {
      for (const socket of sockets) socket.destroy()
      upstream.close()
    }
  })
})

describe('npm run, stopped by Ctrl-C in a terminal (SIGINT to the whole process group)', () => {
  it('npm run server drains once and exits 0: the SIGINT npm forwards is not a second one', { timeout: 60_000 }, async () => {
    const run = npmRun(['server', '--', '--flags', 'examples/flags.json', '--port', '0'])
    await expect.poll(run.output, { timeout: 50_000, interval: 100 }).toMatch(/serving .* at http:\/\/\S+/)
    const url = run.output().match(/serving .* at (http:\/\/\S+)/)![1]

    process.kill(-run.child.pid!, 'SIGINT')
    expect(await orHung(run.exited, 15_000), run.output()).toBe(0)
    expect(run.output()).not.toContain('again')
    expect(run.output()).toContain('[holdfast-server] stopped')
    expect(alive(run.child.pid!)).toEqual([])
    expect(await refused(`${url}/healthz`)).toBe(true)
  })
})
