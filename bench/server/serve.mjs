// One server for `npm run bench:server`, in its own process so the load generator does not share
// its event loop. Prints its URL on stdout, then serves until killed.
//
//   node bench/server/serve.mjs holdfast FLAGS      the reference server (dist) with FLAGS targeted flags
//   node bench/server/serve.mjs ceiling BODYFILE    a trivial node:http server answering BODYFILE's
//                                                   precomputed body and ETag (and 304 to a matching
//                                                   If-None-Match): the ceiling on this machine
//   node bench/server/serve.mjs floor BODYFILE      the same answers, found by the request body read
//                                                   and decoded (BODYFILE's `request`): what any server
//                                                   answering per context must at least do
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { flagSet } from './flagSet.mjs'

const [mode, arg] = process.argv.slice(2)

if (mode === 'holdfast') {
  const { createFlagServer, silentLogger } = await import('../../packages/server/dist/index.js')
  const server = await createFlagServer({ flags: flagSet(Number(arg)), port: 0, logger: silentLogger })
  console.log(server.url)
} else if (mode === 'ceiling') {
  const parsed = JSON.parse(readFileSync(arg, 'utf8'))
  // Bytes, encoded once, as the server sends a cached answer: the ceiling must not pay for
  // encoding a string on every request when the server does not.
  const body = Buffer.from(parsed.body)
  const { etag } = parsed
  const server = createServer((req, res) => {
    // Read the request body like any real server must, then answer the precomputed bytes.
    req.resume()
    req.on('end', () => {
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ETag: etag, 'Access-Control-Allow-Origin': '*' })
        res.end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length, ETag: etag, 'Access-Control-Allow-Origin': '*' })
      res.end(body)
    })
  })
  server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`))
} else if (mode === 'floor') {
  // The least a server must do to answer a context from a cache: read the body, decode it, look
  // it up, compare the tag. No routing, auth, CORS choices, limits or metrics.
  const parsed = JSON.parse(readFileSync(arg, 'utf8'))
  const answers = new Map([[parsed.request, { body: Buffer.from(parsed.body), etag: parsed.etag }]])
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      const answer = answers.get((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8'))
      if (!answer) {
        res.writeHead(400)
        res.end()
        return
      }
      if (req.headers['if-none-match'] === answer.etag) {
        res.writeHead(304, { ETag: answer.etag, 'Access-Control-Allow-Origin': '*' })
        res.end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': answer.body.length, ETag: answer.etag, 'Access-Control-Allow-Origin': '*' })
      res.end(answer.body)
    })
  })
  server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`))
} else {
  console.error('usage: serve.mjs holdfast FLAGS | ceiling BODYFILE | floor BODYFILE')
  process.exit(2)
}
