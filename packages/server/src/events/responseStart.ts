// The start of an answer's body, the rest never read: events forwarding reads a refusal's first KiB
// for the event it names, the dead-letter replay the 200 characters it prints. Read whole, a sink or
// a proxy answering 1 GB held it in memory, and one that never ended ran into the timeout.

/**
 * Reads `response`'s body until at least `maxBytes` bytes came (a chunk may take it past), it ends,
 * or it breaks or stalls until the request's timeout (what came is kept: the status stands); then
 * cancels the rest, releasing the connection. Empty without a body.
 */
export async function readResponseStart(response: Response, maxBytes: number): Promise<Buffer> {
  const reader = response.body?.getReader()
  if (!reader) return Buffer.alloc(0)
  const chunks: Buffer[] = []
  let bytes = 0
  try {
    while (bytes < maxBytes) {
      const { done, value } = await reader.read()
      if (done || !value) break
      chunks.push(Buffer.from(value))
      bytes += value.length
    }
  } catch {
    // Broke or stalled: what came of it is all there is.
  }
  await reader.cancel().catch(() => undefined)
  return Buffer.concat(chunks)
}
