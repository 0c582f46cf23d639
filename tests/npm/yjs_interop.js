// Interop driver for Weft's CRDT core (tests/crdt/test_yjs_interop.py): a real Yjs document
// and y-protocols awareness, acting like the y-websocket provider does.
//
// Reads {"root": name, "clientID": n, "commands": [...]} as JSON on stdin, runs the commands in
// order on one Y.Doc, and prints a JSON array with one result per command.  Binary data travels
// as base64.  Positions are Yjs positions: UTF-16 code units.
//   {"cmd": "apply", "update": b64}                   -> {}
//   {"cmd": "insert", "index": i, "text": s}          -> {"update": b64}  (one transaction)
//   {"cmd": "delete", "index": i, "length": n}        -> {"update": b64}
//   {"cmd": "step1"}                                  -> {"frame": b64}   (provider's opening)
//   {"cmd": "updateFrame", "index": i, "text": s}     -> {"frame": b64}   (insert, as sent)
//   {"cmd": "awareness", "state": any}                -> {"frame": b64}   (set local state)
//   {"cmd": "queryAwareness"}                         -> {"frame": b64}
//   {"cmd": "frame", "data": b64}                     -> {"reply": b64|null, "type": n}
//   {"cmd": "state"}   -> {"text", "stateVector": b64, "update": b64, "awareness": {id: state}}
'use strict'
const Y = require('yjs')
const syncProtocol = require('y-protocols/sync')
const awarenessProtocol = require('y-protocols/awareness')
const encoding = require('lib0/encoding')
const decoding = require('lib0/decoding')

const messageSync = 0
const messageAwareness = 1
const messageAuth = 2
const messageQueryAwareness = 3

const b64 = (bytes) => Buffer.from(bytes).toString('base64')
const unb64 = (text) => new Uint8Array(Buffer.from(text, 'base64'))

function run ({ root = 'text', clientID = 1000, commands }) {
  const doc = new Y.Doc()
  doc.clientID = clientID
  const text = doc.getText(root)
  const awareness = new awarenessProtocol.Awareness(doc)
  clearInterval(awareness._checkInterval) // no timers: the process must exit when done
  let captured = []
  doc.on('update', (update, origin) => { if (origin !== 'remote') captured.push(update) })
  const edit = (fn) => {
    captured = []
    doc.transact(fn)
    return captured.length ? Y.mergeUpdates(captured) : new Uint8Array([0, 0])
  }
  const frameOf = (write) => {
    const encoder = encoding.createEncoder()
    write(encoder)
    return b64(encoding.toUint8Array(encoder))
  }
  return commands.map((c) => {
    switch (c.cmd) {
      case 'apply':
        Y.applyUpdate(doc, unb64(c.update), 'remote')
        return {}
      case 'insert':
        return { update: b64(edit(() => text.insert(c.index, c.text))) }
      case 'delete':
        return { update: b64(edit(() => text.delete(c.index, c.length))) }
      case 'step1':
        return { frame: frameOf((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeSyncStep1(e, doc) }) }
      case 'updateFrame': {
        const update = edit(() => text.insert(c.index, c.text))
        return { frame: frameOf((e) => { encoding.writeVarUint(e, messageSync); syncProtocol.writeUpdate(e, update) }) }
      }
      case 'awareness':
        awareness.setLocalState(c.state)
        return {
          frame: frameOf((e) => {
            encoding.writeVarUint(e, messageAwareness)
            encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID]))
          })
        }
      case 'queryAwareness':
        return { frame: frameOf((e) => encoding.writeVarUint(e, messageQueryAwareness)) }
      case 'frame': {
        // What WebsocketProvider's readMessage does with a frame from the server.
        const decoder = decoding.createDecoder(unb64(c.data))
        const encoder = encoding.createEncoder()
        const type = decoding.readVarUint(decoder)
        if (type === messageSync) {
          encoding.writeVarUint(encoder, messageSync)
          syncProtocol.readSyncMessage(decoder, encoder, doc, 'remote')
        } else if (type === messageAwareness) {
          awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), 'remote')
        } else if (type === messageQueryAwareness) {
          encoding.writeVarUint(encoder, messageAwareness)
          encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, Array.from(awareness.getStates().keys())))
        } else if (type === messageAuth) {
          decoding.readVarUint(decoder)
          return { type, reason: decoding.readVarString(decoder), reply: null }
        } else {
          throw new Error('unknown message type ' + type)
        }
        return { type, reply: encoding.length(encoder) > 1 ? b64(encoding.toUint8Array(encoder)) : null }
      }
      case 'state': {
        const states = {}
        awareness.getStates().forEach((state, id) => { states[id] = state })
        return {
          text: text.toString(),
          stateVector: b64(Y.encodeStateVector(doc)),
          update: b64(Y.encodeStateAsUpdate(doc)),
          awareness: states
        }
      }
      default:
        throw new Error('unknown command ' + c.cmd)
    }
  })
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify(run(JSON.parse(input))))
})
