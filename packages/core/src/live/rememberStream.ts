// What the page remembers of the stream a 200 advertised, for the next page whose first answer is a
// 304 (no body, so no `eventStreams`): kept in localStorage under the OFREP URL and static headers.
import { safely } from './safely'
import { sameOrigin, type StreamInfo } from './streamInfo'

/**
 * Remembers what a 200 of the headers `tag` advertised, for a 304 of the next page (see
 * `startLiveUpdates`). OFREP: a stream URL may carry a vendor's token and must not be persisted.
 * Only a stream on the OFREP URL's origin without a query (the reference server's) is remembered;
 * for any other, a 304 costs one full refetch instead.
 */
export function rememberStream(url: string, tag: string, stream?: StreamInfo) {
  const key = `holdfast-live:${url}${tag}`
  safely(() =>
    stream && (!sameOrigin(stream.url, url) || stream.url.includes('?'))
      ? localStorage.removeItem(key)
      : localStorage.setItem(key, JSON.stringify(stream ? [{ type: 'sse', url: stream.url, inactivityDelaySec: stream.inactivityDelaySec }] : [])),
  )
}
