// How `holdfast-server snapshot` writes `--out`: crash-safe (write, fsync, rename, fsync of the
// directory, so a power cut after "wrote" cannot take the rename back), a full disk leaves the old
// file and no debris, and temp files of a writer killed mid-write (kill -9 of a real process) do
// not pile up beside the file, while a live writer's temp is never taken from under it.
import { spawn } from 'node:child_process'
import { watch } from 'node:fs'
import { open, readdir, readFile, rename, utimes, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { nodeFileSystem, type EventFileSystem } from '../../packages/server/src/events/fileSystem'
import { makeSnapshot, snapshotOutcome } from '../../packages/server/src/flags/snapshotCommand'
import { writeFileAtomic } from '../../packages/server/src/flags/snapshotFile'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { booleanFlags } from './relay-fakes'
import { tempDir } from './helpers'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The real file system, recording each step, with a fault on cue. */
function recordingFs(fault: { op?: 'write' | 'syncDir'; code?: string } = {}) {
  const steps: string[] = []
  const fs: EventFileSystem = {
    ...nodeFileSystem,
    async open(path, mode, permissions) {
      steps.push(`open ${basename(path)} ${mode}`)
      const file = await nodeFileSystem.open(path, mode, permissions)
      return {
        ...file,
        async write(buffer, offset, length) {
          steps.push('write')
          // A disk that fills half way through: some bytes land, then ENOSPC.
          if (fault.op === 'write') {
            if (steps.filter((s) => s === 'write').length > 1) throw Object.assign(new Error('no space left on device'), { code: fault.code ?? 'ENOSPC' })
            return file.write(buffer, offset, Math.max(1, Math.floor(length / 2)))
          }
          return file.write(buffer, offset, length)
        },
        async datasync() {
          steps.push('fsync file')
          return file.datasync()
        },
        async close() {
          steps.push('close')
          return file.close()
        },
      }
    },
    async rename(from, to) {
      steps.push(`rename ${basename(from)} ${basename(to)}`)
      return nodeFileSystem.rename(from, to)
    },
    async syncDir(dir) {
      steps.push(`fsync dir ${dir}`)
      if (fault.op === 'syncDir') throw Object.assign(new Error('i/o error'), { code: fault.code ?? 'EIO' })
      return nodeFileSystem.syncDir(dir)
    },
  }
  return { fs, steps }
}

const temps = async (dir: string) => (await readdir(dir)).filter((name) => name.endsWith('.tmp'))

describe('snapshot --out is written crash-safely', () => {
  it('in the order write → fsync(file) → rename → fsync(dir)', async () => {
    const dir = await tempDir()
    const flags = join(dir, 'flags.json')
    await writeFile(flags, JSON.stringify(booleanFlags(3)))
    const { fs, steps } = recordingFs()
    const out = join(dir, 'out.json')
    expect(await makeSnapshot({ flagsFile: flags, out, fs })).toMatchObject({ ok: true })
    const temp = steps[0]!.split(' ')[1]!
    expect(temp).toMatch(/^\.out\.json\.\d+\.[0-9a-f]{8}\.tmp$/)
    expect(steps).toEqual([`open ${temp} w`, 'write', 'fsync file', 'close', `rename ${temp} out.json`, `fsync dir ${dir}`])
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ kind: 'definitions', definitions: booleanFlags(3) })
  })

  it('a disk that fills mid-write: a write failure (the CLI\'s exit 3), the old file byte for byte, no temp file left', async () => {
    const dir = await tempDir()
    const flags = join(dir, 'flags.json')
    await writeFile(flags, JSON.stringify(booleanFlags(3)))
    const out = join(dir, 'out.json')
    expect(await makeSnapshot({ flagsFile: flags, out })).toMatchObject({ ok: true })
    const before = await readFile(out, 'utf8')
    await writeFile(flags, JSON.stringify(booleanFlags(4)))
    const { fs, steps } = recordingFs({ op: 'write' })
    expect(await snapshotOutcome({ flagsFile: flags, out, fs })).toEqual({ ok: false, failed: 'write', message: expect.stringMatching(/ENOSPC/) })
    expect(steps.some((s) => s.startsWith('rename'))).toBe(false)
    expect(await readFile(out, 'utf8')).toBe(before)
    expect(await temps(dir)).toEqual([])
  })

  it('a directory fsync that fails with EIO is reported (a write failure, the CLI\'s exit 3), not swallowed', async () => {
    const dir = await tempDir()
    const flags = join(dir, 'flags.json')
    await writeFile(flags, JSON.stringify(booleanFlags(3)))
    const { fs } = recordingFs({ op: 'syncDir' })
    const out = join(dir, 'out.json')
    const result = await snapshotOutcome({ flagsFile: flags, out, fs })
    // The rename happened: the message must not say the file was left as it was ("cannot write").
    expect(result).toEqual({ ok: false, failed: 'write', message: `wrote ${out}, but could not sync its directory (EIO): a power cut may still undo it` })
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ kind: 'definitions' })
  })
})

/** A flags file of ~12 MiB (well under the 16 MiB bound), so that writing its snapshot takes a while. */
async function largeFlags(dir: string): Promise<string> {
  const flags: Record<string, unknown> = {}
  for (let i = 0; i < 60; i++) flags[`f${i}`] = { state: 'ENABLED', variants: { on: 'x'.repeat(200_000), off: 'off' }, defaultVariant: 'off' }
  const file = join(dir, 'large.json')
  await writeFile(file, JSON.stringify({ flags }))
  return file
}

/** Runs `holdfast-server snapshot` as a real process and kills it (-9) as soon as its temp file appears. */
async function killMidWrite(flags: string, out: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/bin.ts', 'snapshot', '--flags', flags, '--out', out], { cwd: root, stdio: 'ignore' })
  const watcher = watch(join(out, '..'), (_event, name) => {
    if (name && name.startsWith(`.${basename(out)}.`) && name.endsWith('.tmp')) child.kill('SIGKILL')
  })
  try {
    await new Promise((resolve) => child.on('exit', resolve))
  } finally {
    watcher.close()
  }
}

describe('temp files of a killed writer', () => {
  it('kill -9 mid-write leaves one; the next write removes it, but not a live writer\'s or anything else', async () => {
    const dir = await tempDir()
    const out = join(dir, 'flags.snapshot.json')
    const large = await largeFlags(dir)
    // The kill must land before the rename; the file is large enough that it nearly always does.
    for (let attempt = 0; attempt < 5 && (await temps(dir)).length === 0; attempt++) await killMidWrite(large, out)
    const left = await temps(dir)
    expect(left).toHaveLength(1)
    expect(left[0]).toMatch(/^\.flags\.snapshot\.json\.\d+\.[0-9a-f]{8}\.tmp$/)
    // Killed two minutes ago (a temp written within a minute may be a writer's on another host).
    const minutesAgo = new Date(Date.now() - 120_000)
    await utimes(join(dir, left[0]!), minutesAgo, minutesAgo)

    // Another live writer's temp (this process's parent is alive), fresh: kept. Another file's
    // temp, a name that is not ours: kept. A live pid's temp not written for an hour (a pid reused): removed.
    const live = `.flags.snapshot.json.${process.ppid}.0123abcd.tmp`
    const reused = `.flags.snapshot.json.${process.ppid}.89abcdef.tmp`
    const others = ['.other.json.999999.0123abcd.tmp', '.flags.snapshot.json.bak', 'flags.snapshot.json.999999.0123abcd.tmp']
    for (const name of [live, reused, ...others]) await writeFile(join(dir, name), 'x')
    const hourAgo = new Date(Date.now() - 3_600_000)
    await utimes(join(dir, reused), hourAgo, hourAgo)
    // A live pid's temp last written five minutes ago (past the fresh minute, within the stale ten):
    // kept for its pid alone. The fresh `live` one above is kept by its age whatever its pid says.
    const slow = `.flags.snapshot.json.${process.ppid}.fedcba98.tmp`
    await writeFile(join(dir, slow), 'x')
    const fiveMinutesAgo = new Date(Date.now() - 5 * 60_000)
    await utimes(join(dir, slow), fiveMinutesAgo, fiveMinutesAgo)

    const small = join(dir, 'small.json')
    await writeFile(small, JSON.stringify(booleanFlags(3)))
    const lines: string[] = []
    expect(await runSnapshotCli(['--flags', small, '--out', out, '--max-shrink', '100'], { out: (l) => lines.push(l), err: (l) => lines.push(l) })).toBe(0)
    const after = await readdir(dir)
    expect(after).not.toContain(left[0])
    expect(after).not.toContain(reused)
    expect(after).toEqual(expect.arrayContaining([live, slow, ...others]))
  }, 60_000)

  it('a writer on another host or container of a shared volume keeps its temp while it writes', async () => {
    // Its PID means nothing here: gone in this PID namespace, or this very process's (PID 1 in two
    // containers). Before: its fresh temp was removed as stale and its rename failed with ENOENT,
    // the other host's snapshot command failing because this one ran at the same moment.
    const dir = await tempDir()
    const out = join(dir, 'flags.snapshot.json')
    let gone = 4_000_000
    while (isAlive(gone)) gone--
    for (const pid of [gone, process.pid]) {
      const temp = join(dir, `.flags.snapshot.json.${pid}.0123abcd.tmp`)
      const other = await open(temp, 'w')
      await other.write('{"half": ')
      await writeFileAtomic(out, JSON.stringify({ mine: true }))
      await other.write('"written"}')
      await other.sync()
      await other.close()
      await rename(temp, out)
      expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ half: 'written' })
    }
  })

  it('two snapshot commands writing the same --out at once: both succeed, the file is one whole snapshot, no temp left', async () => {
    const dir = await tempDir()
    const out = join(dir, 'out.json')
    const a = join(dir, 'a.json')
    const b = join(dir, 'b.json')
    await writeFile(a, JSON.stringify(booleanFlags(3, 'on')))
    await writeFile(b, JSON.stringify(booleanFlags(3, 'off')))
    // In one process (same pid: each write's own temp is live to the other) …
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all([makeSnapshot({ flagsFile: a, out }), makeSnapshot({ flagsFile: b, out })])
      expect(results).toEqual([expect.objectContaining({ ok: true }), expect.objectContaining({ ok: true })])
      expect([booleanFlags(3, 'on'), booleanFlags(3, 'off')]).toContainEqual(JSON.parse(await readFile(out, 'utf8')).definitions)
    }
    // … and in two processes.
    const run = (flags: string) =>
      new Promise<number | null>((resolve) => spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/bin.ts', 'snapshot', '--flags', flags, '--out', out], { cwd: root, stdio: 'ignore' }).on('exit', resolve))
    expect(await Promise.all([run(a), run(b)])).toEqual([0, 0])
    expect([booleanFlags(3, 'on'), booleanFlags(3, 'off')]).toContainEqual(JSON.parse(await readFile(out, 'utf8')).definitions)
    expect(await temps(dir)).toEqual([])
  }, 60_000)
})

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
