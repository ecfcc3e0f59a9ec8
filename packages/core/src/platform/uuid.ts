/**
 * A UUID v4 for event ids. `crypto.randomUUID` exists only in secure contexts (https, localhost),
 * so plain-http pages fall back to `getRandomValues`, and runtimes with neither to Math.random:
 * the receiver de-duplicates by id, so the id must be unique, not secret.
 */
export function uuid(): string {
  const c = typeof crypto !== 'undefined' ? crypto : undefined
  if (c && typeof c.randomUUID === 'function') return c.randomUUID()
  const bytes = new Uint8Array(16)
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes)
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256)
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  // 32 hex digits, dashed 8-4-4-4-12.
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0'))
    .join('')
    .replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
}
