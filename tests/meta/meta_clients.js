// Real npm clients speaking Weft's document-metadata extension, driven over stdin/stdout.
//
//   node meta_clients.js sharedb ws://127.0.0.1:PORT/ot notes a
//   node meta_clients.js yjs ws://127.0.0.1:PORT/crdt notes/a
//
// stdin: one JSON request per line ({"set": {...}, "context": "...", "id": n} or {"id": n});
// stdout: {"ready": true} once connected, then every metadata message the server sent, as is.
// ShareDB: sent with connection.send({a: "meta", c, d, ...}), received on the 'receive' event
// (and swallowed there, so the client's own router never sees the unknown action).
// y-websocket: message type 100 + varString(JSON), received by provider.messageHandlers[100].
'use strict'

const path = require('path')
module.paths.unshift(path.resolve(__dirname, '..', 'npm', 'node_modules'))

const readline = require('readline')
const WebSocket = require('ws')

const META = 100
const [mode, url, ...names] = process.argv.slice(2)
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
let send = null

if (mode === 'sharedb') {
  const ShareDB = require('sharedb/lib/client')
  ShareDB.logger.setMethods({ info: () => {}, warn: (...a) => emit({ warn: a.map(String) }), error: () => {} })
  const [collection, id] = names
  const connection = new ShareDB.Connection(new WebSocket(url))
  connection.on('receive', (request) => {
    if (request.data && request.data.a === 'meta') {
      emit(request.data)
      request.data = null // handled: the client's router must not see it
    }
  })
  connection.on('state', (state) => { if (state === 'connected') emit({ ready: true }) })
  send = (req) => connection.send(Object.assign({ a: 'meta', c: collection, d: id }, req))
} else if (mode === 'yjs') {
  const Y = require('yjs')
  const { WebsocketProvider } = require('y-websocket')
  const encoding = require('lib0/encoding')
  const decoding = require('lib0/decoding')
  const provider = new WebsocketProvider(url, names[0], new Y.Doc(), {
    WebSocketPolyfill: WebSocket, disableBc: true, maxBackoffTime: 300
  })
  provider.messageHandlers[META] = (encoder, decoder) => {
    emit(JSON.parse(decoding.readVarString(decoder)))
  }
  provider.on('sync', (synced) => { if (synced) emit({ ready: true }) })
  send = (req) => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, META)
    encoding.writeVarString(encoder, JSON.stringify(req))
    provider.ws.send(encoding.toUint8Array(encoder))
  }
} else {
  throw new Error('mode must be sharedb or yjs')
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim()) send(JSON.parse(line))
}).on('close', () => process.exit(0))
