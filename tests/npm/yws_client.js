// A real npm `y-websocket` provider driven over stdin/stdout, one JSON object per line.
//
//   node yws_client.js ws://127.0.0.1:PORT/crdt DOC [TOKEN]
//
// Requests: {"id": n, "cmd": "...", ...} -> {"id": n, "ok": true, ...} or {"ok": false, error}.
// Events: {"event": "status" | "synced" | "closed" | "connection-close" | "permission_denied"}.
//
// The text is ydoc.getText('text').  Indexes are UTF-16 code units, as in every JS editor
// binding: that is the point of the Unicode tests (the server counts code points).
'use strict'

const readline = require('readline')
const WebSocket = require('ws')
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const authProtocol = require('y-protocols/auth')

const [url, room, token] = process.argv.slice(2)
const ydoc = new Y.Doc()
const ytext = ydoc.getText('text')
const params = token ? { token } : {}
const provider = new WebsocketProvider(url, room, ydoc, {
  WebSocketPolyfill: WebSocket, params, disableBc: true, maxBackoffTime: 300
})

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
function errorOf (err) { return { message: String(err && err.message || err) } }

provider.on('status', (e) => emit({ event: 'status', status: e.status }))
provider.on('sync', (synced) => emit({ event: 'synced', synced }))
provider.on('closed', (e) => emit({ event: 'closed', code: e.code, reason: e.reason }))
provider.on('connection-close', (e) => { if (e) emit({ event: 'connection-close', code: e.code, reason: e.reason }) })
provider.messageHandlers[2] = (_encoder, decoder, prov) => {
  authProtocol.readAuthMessage(decoder, prov.doc, (_doc, reason) => emit({ event: 'permission_denied', reason }))
}
provider.awareness.on('change', () => emit({ event: 'awareness', states: awarenessStates() }))

function awarenessStates () {
  const out = {}
  provider.awareness.getStates().forEach((state, client) => {
    if (client !== ydoc.clientID) out[client] = state
  })
  return out
}

function waitFor (predicate, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const tick = () => {
      if (predicate()) return resolve()
      if (Date.now() - started > timeoutMs) return reject(new Error('timed out waiting for ' + what()))
      setTimeout(tick, 10)
    }
    tick()
  })
}

const commands = {
  wait_synced: (r) => waitFor(() => provider.synced, r.timeout || 10000, () => 'sync').then(() => ({ text: ytext.toString() })),
  insert: (r) => { ytext.insert(r.index, r.text); return { text: ytext.toString() } },
  delete: (r) => { ytext.delete(r.index, r.length); return { text: ytext.toString() } },
  text: () => ({ text: ytext.toString(), clientID: ydoc.clientID }),
  wait_text: (r) => waitFor(() => ytext.toString() === r.text, r.timeout || 10000, () => 'text, have ' + JSON.stringify(ytext.toString())).then(() => ({ text: ytext.toString() })),
  disconnect: () => { provider.disconnect(); return {} },
  connect: () => { provider.connect(); return {} },
  awareness_set: (r) => { provider.awareness.setLocalState(r.state); return {} },
  awareness_states: () => ({ states: awarenessStates() }),
  wait_awareness: (r) => waitFor(() => Object.values(awarenessStates()).some((s) => JSON.stringify(s) === JSON.stringify(r.state)), r.timeout || 10000, () => 'awareness ' + JSON.stringify(awarenessStates())).then(() => ({ states: awarenessStates() })),
  close: () => { provider.destroy(); setTimeout(() => process.exit(0), 50); return {} }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  let request
  try { request = JSON.parse(line) } catch (err) { return emit({ ok: false, error: errorOf(err) }) }
  try {
    const handler = commands[request.cmd]
    if (!handler) throw new Error('unknown command ' + request.cmd)
    const result = await handler(request)
    emit(Object.assign({}, result || {}, { id: request.id, ok: true }))
  } catch (err) {
    emit({ id: request.id, ok: false, error: errorOf(err) })
  }
})
rl.on('close', () => { provider.destroy(); process.exit(0) })
