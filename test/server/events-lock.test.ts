// One server per events file or spool. Two relays on one spool (a fleet sharing a volume, a
// restart while the old process still runs) lost half the acknowledged events: both forwarders
// read, delivered and deleted the same segments while each appended with its own idea of the
// segment's size. The second server now refuses to start and names the holder; a holder killed
// with SIGKILL (same host) or silent for 30 s (another host) is taken over.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { lockTiming } from '../../packages/server/src/events/lockTiming'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { serverProcess } from './events-process'

// A lock that looks stale by this host's clock is watched for a touch: 15 s in service, 300 ms here.
lockTiming.watchMs = 300

let counter = 0
const batch = (n: number) => Array.from({ length: n }, () => ({ id: `lock-${process.pid}-${++counter}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000 }))
// Whole lines only: this is read while the sink may be writing one.
const idsIn = async (file: string) => {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((line) => JSON.parse(line).id as string)
}

describe('a relay whose spool lock is taken over by a server on another host', { timeout: 30_000 }, () => {
  it('(it was stopped or its mount hung for 30 s) stops taking events and forwarding, says so, and leaves the lock to its holder', async () => {
    // Before: it went on as if it held the lock, and two relays appended to and delivered from one
    // spool (each overwriting the other's cursor): acknowledged events lost or sent twice.
    const refresh = lockTiming.refreshMs
    lockTiming.refreshMs = 50
    try {
      const sinkFile = join(await tempDir(), 'sink.jsonl')
      const sink = await startServer({ eventsFile: sinkFile })
      const spool = join(await tempDir(), 'spool')
      const logger = recordingLogger()
      const relay = await startServer({ eventsUpstream: `${sink.url}/holdfast/v1/events`, eventsSpoolDir: spool, logger })
      const first = batch(2)
      expect((await post(`${relay.url}/holdfast/v1/events`, { events: first })).status).toBe(202)
      await waitFor(async () => (await idsIn(sinkFile)).length === 2, 10_000)
      // What a relay on another host writes when it takes a lock untouched for 30 s over.
      const theirs = JSON.stringify({ pid: 4242, host: 'other-host.invalid', since: '2026-12-05T06:00:00.000Z' })
      await writeFile(join(spool, 'LOCK'), theirs)
      await waitFor(async () => (await post(`${relay.url}/holdfast/v1/events`, { events: batch(1) })).status === 503, 5_000)
      const refused = await post(`${relay.url}/holdfast/v1/events`, { events: batch(1) })
      expect(refused.status).toBe(503)
      expect(refused.headers.get('Retry-After')).toBe('5')
      expect(await refused.json()).toMatchObject({ errorCode: 'STORE_IN_USE', errorDetails: expect.stringContaining('pid 4242 on other-host.invalid') })
      const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { events: { takenOver?: { by: string } } }
      expect(status.events.takenOver?.by).toContain('pid 4242 on other-host.invalid')
      expect(await (await fetch(`${relay.url}/metrics`)).text()).toMatch(/holdfast_events_rejected_total\{reason="store_in_use"\} [1-9]/)
      expect(logger.lines.join('\n')).toContain('was taken over by another server (pid 4242 on other-host.invalid, since 2026-12-05T06:00:00.000Z); this one no longer takes events (503) nor forwards them')
      // Its close leaves the other server's lock in place.
      await relay.close()
      expect(await readFile(join(spool, 'LOCK'), 'utf8')).toBe(theirs)
    } finally {
      lockTiming.refreshMs = refresh
    }
  })

  it('whose lock file is gone when it comes back (the other server took it, then stopped; or it was deleted by hand) stops as well', async () => {
    // Timeline: this relay is paused past 30 s; another takes the spool over, delivers from it and
    // stops cleanly (its lock deleted). Before, this one came back, found no lock, and went on with
    // its stale idea of the spool and no lock at all: a third relay then started beside it at once.
    const refresh = lockTiming.refreshMs
    lockTiming.refreshMs = 50
    try {
      const spool = join(await tempDir(), 'spool')
      const relay = await startServer({ eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool })
      expect((await post(`${relay.url}/holdfast/v1/events`, { events: batch(1) })).status).toBe(202)
      await rm(join(spool, 'LOCK'))
      await waitFor(async () => (await post(`${relay.url}/holdfast/v1/events`, { events: batch(1) })).status === 503, 5_000)
      const status = (await (await fetch(`${relay.url}/holdfast/v1/status`)).json()) as { events: { takenOver?: { by: string } } }
      expect(status.events.takenOver?.by).toMatch(/its lock file \S+LOCK was removed/)
      // The next relay on the spool is its only server.
      const next = await startServer({ eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool })
      expect((await post(`${next.url}/holdfast/v1/events`, { events: batch(1) })).status).toBe(202)
      expect((await post(`${relay.url}/holdfast/v1/events`, { events: batch(1) })).status).toBe(503)
    } finally {
      lockTiming.refreshMs = refresh
    }
  })
})

describe('one server per events file or spool', { timeout: 60_000 }, () => {
  it('a second relay on the same spool is refused, naming the holder; once the first is closed a new one delivers its spool', async () => {
    const sinkFile = join(await tempDir(), 'sink.jsonl')
    const sink = await startServer({ eventsFile: sinkFile, demoControls: true })
    sink.outage!.set({ events: true, retryAfter: 1 })
    const spool = join(await tempDir(), 'spool')
    const options = { eventsUpstream: `${sink.url}/holdfast/v1/events`, eventsSpoolDir: spool }
    const first = await startServer(options)
    const sent = batch(5)
    expect((await post(`${first.url}/holdfast/v1/events`, { events: sent })).status).toBe(202)
    await expect(startServer(options)).rejects.toThrow(new RegExp(`events spool .* is in use by another server \\(pid ${process.pid}`))
    await first.close()
    const second = await startServer(options)
    expect(second.eventsForwarding!().pending).toBe(5)
    sink.outage!.set({ events: false })
    await waitFor(async () => (await idsIn(sinkFile)).length === 5, 15_000)
    expect(await idsIn(sinkFile)).toEqual(sent.map((e) => e.id))
  })

  it('a second server on the same events file is refused; a port already taken releases the lock', async () => {
    const file = join(await tempDir(), 'events.jsonl')
    const first = await startServer({ eventsFile: file })
    await expect(startServer({ eventsFile: file })).rejects.toThrow(/events file .* is in use by another server/)
    // A server that fails to listen must not keep the file locked.
    await expect(startServer({ eventsFile: join(await tempDir(), 'other.jsonl'), port: first.port })).rejects.toThrow()
    await first.close()
    const second = await startServer({ eventsFile: file })
    expect((await post(`${second.url}/holdfast/v1/events`, { events: batch(1) })).status).toBe(202)
  })

  it('a lock from another host is taken over only once its holder stopped touching it for 30 s', async () => {
    const spool = join(await tempDir(), 'spool')
    const options = { eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool }
    const first = await startServer(options)
    await first.close()
    const lock = join(spool, 'LOCK')
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'another-host.invalid', since: '2026-12-03T00:00:00Z' }))
    await expect(startServer(options)).rejects.toThrow(/pid 1 on another-host\.invalid/)
    const old = new Date(Date.now() - 31_000)
    await utimes(lock, old, old)
    const taken = await startServer(options)
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ pid: process.pid })
    await taken.close()
  })

  it('a holder on another host whose clock is 10 minutes behind, still touching the lock, is not taken over; once it stops, it is', async () => {
    const spool = join(await tempDir(), 'spool')
    const options = { eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool }
    const first = await startServer(options)
    await first.close()
    const lock = join(spool, 'LOCK')
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'behind.invalid', since: '2026-12-03T00:00:00Z' }))
    // The holder touches the lock (as often as the watch needs to see it) with its own clock, 10
    // minutes behind this host's: every mtime looks 10 minutes old here.
    const touch = () => {
      const then = new Date(Date.now() - 600_000)
      return utimes(lock, then, then)
    }
    await touch()
    const touching = setInterval(() => void touch(), 50)
    try {
      // Before: taken over at once, and two servers appended to one spool.
      await expect(startServer(options)).rejects.toThrow(/pid 1 on behind\.invalid/)
    } finally {
      clearInterval(touching)
    }
    // The holder is gone (it stopped touching): taken over after the watch.
    const taken = await startServer(options)
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ pid: process.pid })
    await taken.close()
  })

  // After a power loss the lock's pid is often some other live process; it must not keep the
  // relay from starting. A live child process stands in for "some other process with that pid".
  it.runIf(existsSync('/proc/self/stat'))('a lock whose pid now belongs to another process, or from an earlier boot, is taken over; a live holder is not', async () => {
    const spool = join(await tempDir(), 'spool')
    const options = { eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool }
    const first = await startServer(options)
    await first.close()
    const lock = join(spool, 'LOCK')
    const other = spawn('sleep', ['30'], { stdio: 'ignore' })
    try {
      const stat = await readFile(`/proc/${other.pid}/stat`, 'utf8')
      const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
      const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
      const holder = { pid: other.pid, host: hostname(), since: '2026-12-03T00:00:00Z' }
      // The live process is the holder: refused.
      await writeFile(lock, JSON.stringify({ ...holder, boot, started }))
      await expect(startServer(options)).rejects.toThrow(new RegExp(`pid ${other.pid} on`))
      // The pid was the holder's before it was given to the live process (another start time).
      await writeFile(lock, JSON.stringify({ ...holder, boot, started: String(Number(started) - 1) }))
      await (await startServer(options)).close()
      // Written before the last boot.
      await writeFile(lock, JSON.stringify({ ...holder, boot: '00000000-0000-0000-0000-000000000000', started }))
      const taken = await startServer(options)
      expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ pid: process.pid, boot })
      await taken.close()
    } finally {
      other.kill('SIGKILL')
    }
  })

  it('real processes: a second relay on the spool exits with the reason; after kill -9 of the first, a restart takes the spool over and delivers it', async () => {
    const sinkFile = join(await tempDir(), 'sink.jsonl')
    const sink = await startServer({ eventsFile: sinkFile, demoControls: true })
    sink.outage!.set({ events: true, retryAfter: 1 })
    const spool = join(await tempDir(), 'spool')
    const args = ['--flags', 'examples/flags.json', '--port', '0', '--events-upstream', `${sink.url}/holdfast/v1/events`, '--events-spool', spool]
    const first = serverProcess(args)
    const sent = batch(20)
    expect((await post(`${await first.url()}/holdfast/v1/events`, { events: sent })).status).toBe(202)

    const second = serverProcess(args)
    const exit = await second.exited
    expect(exit.code).not.toBe(0)
    expect(second.output()).toMatch(/is in use by another server \(pid \d+/)

    await first.kill()
    const third = serverProcess(args)
    await third.url()
    sink.outage!.set({ events: false })
    await waitFor(async () => (await idsIn(sinkFile)).length === 20, 20_000)
    expect(await idsIn(sinkFile)).toEqual(sent.map((e) => e.id))
    await third.kill()
  })
})

describe('one server per events file, whatever path names it', { timeout: 30_000 }, () => {
  it('a second server reaching the same events file or spool through a symlinked directory is refused', async () => {
    const dir = await tempDir()
    const alias = join(await tempDir(), 'alias')
    await symlink(dir, alias, 'dir')
    const first = await startServer({ eventsFile: join(dir, 'events.jsonl') })
    await expect(startServer({ eventsFile: join(alias, 'events.jsonl') })).rejects.toThrow(/events file .* is in use by another server/)
    // Through a symlink to the file itself, too.
    const link = join(await tempDir(), 'link.jsonl')
    await symlink(join(dir, 'events.jsonl'), link)
    await expect(startServer({ eventsFile: link })).rejects.toThrow(/is in use by another server/)
    await first.close()
    const spool = join(dir, 'spool')
    const options = (at: string) => ({ eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: at })
    await startServer(options(spool))
    await expect(startServer(options(join(alias, 'spool')))).rejects.toThrow(/events spool .* is in use by another server/)
  })
})
