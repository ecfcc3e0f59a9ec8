/**
 * A UUID v4 for event ids. `crypto.randomUUID` exists only in secure contexts (https, localhost),
 * so plain-http pages fall back to `getRandomValues`, and runtimes with neither to Math.random:
 * the receiver de-duplicates by id, so the id must be unique, not secret.
 */
export function uuid(): string {
  const c = typeof crypto !== 'undefined' ? crypto : undefined
  if (typeof c?.randomUUID === 'function') return c.randomUUID()
  const bytes = new Uint8Array(31)
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(bytes)
  else for (let i = 0; i < 31; i++) bytes[i] = Math.random() * 256
  let i = 0
  // Each 0/1 of the template is a random hex digit; the 8 (variant) keeps its two high bits
  // (8, 9, a or b), and the 4 (version) is not touched.
  return '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (d) => (+d ^ (bytes[i++] & (15 >> (+d >> 2)))).toString(16))
}
