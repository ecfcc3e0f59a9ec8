// Who a stream counts toward for `--max-streams-per-client`, read from its socket's remote address.

/**
 * Who a stream counts toward for `maxConnectionsPerClient`: its remote address, an IPv4-mapped one
 * as IPv4, an IPv6 one by its /64 (the smallest prefix a network hands one host: counted by
 * address, one machine would have 2^64 shares). Undefined without an address.
 */
export function streamClientOf(address: string | undefined): string | undefined {
  if (!address) return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]
  if (!address.includes(':')) return address
  const [head, tail] = address.replace(/%.*$/, '').split('::') as [string, string | undefined]
  const front = head === '' ? [] : head.split(':')
  const back = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? front : [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back]
  return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(':')}::/64`
}
