/**
 * Runs `run` for every item, at most `limit` at a time, in order of start; resolves when all have
 * settled. For work that must not flood a connection or libuv's small thread pool (thousands of
 * store reads, temp-file removals). `run` should not reject; a rejection rejects the whole.
 */
export async function eachLimited<T>(items: readonly T[], limit: number, run: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await run(items[next++])
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
