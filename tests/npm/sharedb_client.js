// A real npm `sharedb` client driven over stdin/stdout, one JSON object per line.
//
//   node sharedb_client.js ws://127.0.0.1:PORT/ot
//
// Requests: {"id": n, "cmd": "...", ...}; every request gets {"id": n, "ok": true, ...result}
// or {"id": n, "ok": false, "error": {code, message}}.  Unrequested events are
// {"event": "...", ...} (doc errors, presence received, connection state).
//
// Documents are named "collection/id".  Op positions are code points (the text-unicode type's
// unit), exactly what an app using ot-text-unicode would send.
'use strict'

const readline = require('readline')
const WebSocket = require('ws')
const ShareDB = require('sharedb/lib/client')
const textUnicode = require('ot-text-unicode')

ShareDB.types.register(textUnicode.type)
ShareDB.logger.setMethods({ info: () => {}, warn: () => {}, error: () => {} })

const url = process.argv[2]
let connection = null
const docs = new Map()
const presences = new Map()

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
function errorOf (err) { return { code: err && err.code, message: String(err && err.message || err) } }

function open () {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.on('close', (code, reason) => emit({ event: 'close', code, reason: String(reason) }))
    if (connection === null) {
      connection = new ShareDB.Connection(socket)
      connection.on('error', (err) => emit({ event: 'error', error: errorOf(err) }))
    } else {
      connection.bindToSocket(socket)
    }
    const onState = (state) => {
      if (state === 'connected') { connection.off('state', onState); resolve({ clientId: connection.id }) }
    }
    connection.on('state', onState)
    socket.on('error', (err) => reject(err))
  })
}

function getDoc (name) {
  let doc = docs.get(name)
  if (!doc) {
    const slash = name.indexOf('/')
    doc = connection.get(name.slice(0, slash), name.slice(slash + 1))
    doc.on('error', (err) => emit({ event: 'doc_error', doc: name, error: errorOf(err) }))
    docs.set(name, doc)
  }
  return doc
}

function cb (resolve, reject, value) {
  return (err) => err ? reject(err) : resolve(typeof value === 'function' ? value() : value)
}

function state (doc) { return { version: doc.version, data: doc.data === undefined ? null : doc.data, type: doc.type ? doc.type.name : null } }

function waitFor (predicate, timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const tick = () => {
      if (predicate()) return resolve()
      if (Date.now() - started > timeoutMs) return reject(new Error('timed out waiting'))
      setTimeout(tick, 10)
    }
    tick()
  })
}

function getPresence (channel) {
  let presence = presences.get(channel)
  if (!presence) {
    presence = connection.getPresence(channel)
    presence.on('receive', (id, value) => emit({ event: 'presence', channel, id, value }))
    presence.on('error', (err) => emit({ event: 'presence_error', channel, error: errorOf(err) }))
    presences.set(channel, presence)
  }
  return presence
}

const commands = {
  connect: () => open(),
  disconnect: () => { connection.socket.close(); return waitFor(() => connection.state !== 'connected', 5000) },
  reconnect: () => open(),
  subscribe: (r) => new Promise((resolve, reject) => { const d = getDoc(r.doc); d.subscribe(cb(resolve, reject, () => state(d))) }),
  fetch: (r) => new Promise((resolve, reject) => { const d = getDoc(r.doc); d.fetch(cb(resolve, reject, () => state(d))) }),
  create: (r) => new Promise((resolve, reject) => { const d = getDoc(r.doc); d.create(r.text, 'text-unicode', cb(resolve, reject, () => state(d))) }),
  // Submitted without waiting for the ack (an editor never waits): returns the local state.
  submit: (r) => { const d = getDoc(r.doc); d.submitOp(r.op, (err) => { if (err) emit({ event: 'op_error', doc: r.doc, error: errorOf(err) }) }); return state(d) },
  submit_wait: (r) => new Promise((resolve, reject) => { const d = getDoc(r.doc); d.submitOp(r.op, cb(resolve, reject, () => state(d))) }),
  insert: (r) => commands.submit({ doc: r.doc, op: r.pos ? [r.pos, r.text] : [r.text] }),
  delete: (r) => commands.submit({ doc: r.doc, op: r.pos ? [r.pos, { d: r.n }] : [{ d: r.n }] }),
  del: (r) => new Promise((resolve, reject) => { getDoc(r.doc).del(cb(resolve, reject, null)) }),
  state: (r) => state(getDoc(r.doc)),
  wait_text: (r) => { const d = getDoc(r.doc); return waitFor(() => d.data === r.text, r.timeout || 10000).then(() => state(d), () => { throw new Error('timed out: text is ' + JSON.stringify(d.data)) }) },
  wait_idle: (r) => new Promise((resolve) => connection.whenNothingPending(() => resolve({}))),
  ping: () => new Promise((resolve) => { connection.once('pong', () => resolve({})); connection.ping() }),
  presence_subscribe: (r) => new Promise((resolve, reject) => getPresence(r.channel).subscribe(cb(resolve, reject, {}))),
  presence_submit: (r) => new Promise((resolve, reject) => {
    const p = getPresence(r.channel)
    const local = p.localPresences[r.presence] || p.create(r.presence)
    local.submit(r.value, cb(resolve, reject, {}))
  }),
  presence_remote: (r) => ({ presences: getPresence(r.channel).remotePresences }),
  doc_presence_submit: (r) => new Promise((resolve, reject) => {
    const p = connection.getDocPresence(r.doc.split('/')[0], r.doc.split('/').slice(1).join('/'))
    p.subscribe((err) => {
      if (err) return reject(err)
      p.create('doc-presence').submit(r.value, cb(resolve, reject, {}))
    })
  }),
  close: () => { connection.close(); setTimeout(() => process.exit(0), 50); return {} }
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
rl.on('close', () => process.exit(0))
