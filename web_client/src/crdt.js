// The CRDT session: a Yjs document synced with y-websocket, edited through y-codemirror.next.
//
// Everything collaborative here is the Yjs ecosystem's own code: the provider speaks the Yjs
// sync and awareness protocols (and reconnects with backoff), the binding maps CodeMirror
// changes to Y.Text and draws remote cursors from awareness. This module adds what the page
// shows: connection state, edits made while offline, state size, editors, round-trip time.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { keymap } from '@codemirror/view'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'

const MESSAGE_SYNC = 0 // y-websocket's message type for sync step 1/2 and updates
const PING_EVERY_MS = 5000

/**
 * Close codes 4000-4499 mean the server refused this document (e.g. it belongs to the OT
 * engine): reconnecting cannot help. y-websocket's own default only stops for 4400-4499.
 */
const isRefusal = (code) => code >= 4000 && code < 4500

export class CrdtSession {
  /**
   * @param {{url: string, room: string, user: {name: string, colour: string}}} options
   *   url: the server's CRDT endpoint without the document, e.g. ws://127.0.0.1:8080/crdt;
   *   room: the server's name of the document (percent-encoded into the URL path)
   */
  constructor ({ url, room, user }) {
    this.engine = 'crdt'
    this.onChange = () => {}
    this.refused = null
    this.error = null
    this.browserOffline = false
    this.everConnected = false
    this.status = 'connecting'
    this.unsentEdits = 0
    this.latencyMs = null
    this.pingSentAt = null
    this.stateSize = 0
    this.stateSizeStale = true

    this.ydoc = new Y.Doc()
    this.ytext = this.ydoc.getText('text')
    // disableBc: tabs of one browser sync through the server like everyone else, so what the
    // page shows as "connected" or "offline" is the whole truth.
    this.provider = new WebsocketProvider(url, encodeURIComponent(room), this.ydoc, {
      disableBc: true,
      maxBackoffTime: 2500,
      shouldReconnect: (event) => !isRefusal(event.code)
    })
    this.provider.awareness.setLocalStateField('user', {
      name: user.name, color: user.colour, colorLight: `${user.colour}33`
    })
    this.undoManager = new Y.UndoManager(this.ytext)

    this.provider.on('status', ({ status }) => this.onStatus(status))
    this.provider.on('sync', (synced) => this.onSync(synced))
    this.provider.on('closed', ({ code, reason }) => this.refuse(code, reason))
    this.provider.awareness.on('change', () => this.changed())
    this.ydoc.on('update', (_update, origin) => {
      this.stateSizeStale = true
      const sent = origin !== this.provider && this.provider.wsconnected && this.provider.synced
      if (origin !== this.provider && !sent) this.unsentEdits++
      this.changed()
    })
    this.timeRoundTrips()
    this.timer = setInterval(() => this.ping(), PING_EVERY_MS)
  }

  extensions () {
    return [
      keymap.of(yUndoManagerKeymap),
      yCollab(this.ytext, this.provider.awareness, { undoManager: this.undoManager })
    ]
  }

  attach (view) {
    this.view = view
  }

  /** Yjs merges offline edits, so the text is editable at once unless the server refused it. */
  get editable () {
    return this.refused === null
  }

  stats () {
    if (this.stateSizeStale) {
      this.stateSize = Y.encodeStateAsUpdate(this.ydoc).byteLength
      this.stateSizeStale = false
    }
    return {
      engine: 'crdt',
      connection: this.connectionLabel(),
      pending: this.unsentEdits,
      refused: this.refused,
      error: this.error,
      stateSize: this.stateSize,
      editors: this.provider.awareness.getStates().size,
      latencyMs: this.latencyMs,
      loaded: true,
      editable: this.editable
    }
  }

  connectionLabel () {
    if (this.refused !== null) return 'refused'
    if (this.status === 'connected' && this.provider.synced) return 'connected'
    if (this.browserOffline) return 'offline'
    return this.everConnected ? 'reconnecting' : 'connecting'
  }

  setOnline (online) {
    this.browserOffline = !online
    if (online && this.refused === null) this.provider.connect()
    if (!online) this.provider.disconnect()
    this.changed()
  }

  destroy () {
    clearInterval(this.timer)
    this.provider.destroy()
  }

  onStatus (status) {
    this.status = status
    if (status === 'connected') this.everConnected = true
    if (status !== 'connected') this.latencyMs = null
    this.changed()
  }

  onSync (synced) {
    if (synced) {
      this.unsentEdits = 0
      this.ping()
    }
    this.changed()
  }

  refuse (code, reason) {
    this.refused = reason || `the server closed the connection with code ${code}`
    this.changed()
  }

  /**
   * Round-trip time of the sync protocol itself: send sync step 1 (our state vector) and wait
   * for the server's step 2. Wraps the provider's sync handler to see step 2 arrive.
   */
  timeRoundTrips () {
    const handlers = this.provider.messageHandlers
    const original = handlers[MESSAGE_SYNC]
    handlers[MESSAGE_SYNC] = (encoder, decoder, provider, emitSynced, messageType) => {
      const syncType = decoding.peekVarUint(decoder)
      const sentAt = this.pingSentAt // read first: handling this step 2 may send the next ping
      original(encoder, decoder, provider, emitSynced, messageType)
      if (syncType === syncProtocol.messageYjsSyncStep2 && sentAt !== null) {
        this.latencyMs = Math.round(performance.now() - sentAt)
        if (this.pingSentAt === sentAt) this.pingSentAt = null
        this.changed()
      }
    }
  }

  ping () {
    const ws = this.provider.ws
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.provider.synced) return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeSyncStep1(encoder, this.ydoc)
    this.pingSentAt = performance.now()
    ws.send(encoding.toUint8Array(encoder))
  }

  changed () {
    this.onChange()
  }
}
