// The OT session: one ShareDB connection over a reconnecting WebSocket, one text-unicode
// document (collection/id), cursors on the presence channel `cursors:<collection>/<id>`.
//
// ShareDB does the hard parts (optimistic local apply, transforming remote ops over pending
// ones, resubmitting after a reconnect); this module wires it to the editor and reports state.

import ShareDB from 'sharedb/lib/client'
import otText from 'ot-text-unicode'
import ReconnectingWebSocket from 'reconnecting-websocket'
import { EditorView, keymap } from '@codemirror/view'
import { history, historyKeymap } from '@codemirror/commands'
import { codePointLength, remoteOp, shareDBBinding, toCodePoints, toUtf16 } from './sharedb-binding.js'
import { RemoteCursors } from './ot-cursors.js'
import { remoteCursors, setRemoteCursors } from './presence.js'

ShareDB.types.register(otText.type)

const PING_EVERY_MS = 5000
const PRESENCE_HEARTBEAT_MS = 10000
const PRESENCE_EXPIRES_MS = 30000
const RESUBSCRIBE_AFTER_MS = 2000
/** Subscribe errors that mean "not for you" (Weft's codes); any other one is retried. */
const REFUSALS = new Set(['ERR_ENGINE_MISMATCH', 'ERR_UNAUTHORIZED', 'ERR_FORBIDDEN'])

export class OtSession {
  /**
   * @param {{url: string, collection: string, id: string, user: {name: string, colour: string}}} options
   *   url: the server's OT endpoint, e.g. ws://127.0.0.1:8080/ot; the server names the
   *   document `<collection>/<id>` (the same name the CRDT endpoint and REST API use)
   */
  constructor ({ url, collection, id, user }) {
    this.engine = 'ot'
    this.collection = collection
    this.id = id
    this.user = user
    this.onChange = () => {}
    this.view = null
    this.refused = null
    this.error = null
    this.browserOffline = false
    this.everConnected = false
    this.latencyMs = null
    this.creating = false

    // ShareDB's Connection only reconnects if its socket does: reconnecting-websocket reopens
    // the same object, and ShareDB then redoes the handshake, resubscribes and resubmits.
    this.socket = new ReconnectingWebSocket(url, [], {
      minReconnectionDelay: 200 + Math.random() * 300,
      maxReconnectionDelay: 3000,
      reconnectionDelayGrowFactor: 1.5,
      connectionTimeout: 4000
    })
    // A close code 4000-4499 is the server refusing us (e.g. 4409: the document belongs to the
    // CRDT engine); reconnecting cannot help. 4500-4599 means "try again later".
    this.socket.addEventListener('close', (event) => {
      if (event.code >= 4000 && event.code < 4500) {
        this.refuse(new Error(event.reason || `the server closed the connection with code ${event.code}`))
      }
    })
    this.connection = new ShareDB.Connection(this.socket)
    this.connection.on('state', (state, reason) => this.onConnectionState(state, reason))
    this.connection.on('receive', (request) => this.onReceive(request.data))
    this.connection.on('pong', () => this.onPong())
    this.connection.on('error', (err) => this.fail(err))

    this.doc = this.connection.get(collection, id)
    this.doc.on('error', (err) => this.fail(err))
    this.doc.on('op', (op) => this.onDocOp(op))
    this.doc.on('nothing pending', () => this.changed())
    this.doc.on('load', () => this.changed())
    this.doc.subscribe((err) => this.onSubscribed(err))

    this.cursors = new RemoteCursors()
    this.lastSeen = new Map()
    this.presence = this.connection.getPresence(`cursors:${collection}/${id}`)
    this.presence.on('receive', (presenceId, value) => this.onPresence(presenceId, value))
    this.presence.on('error', (err) => this.fail(err))
    this.presence.subscribe((err) => { if (err) this.fail(err) })
    this.localPresence = this.presence.create(`${user.name}-${Math.random().toString(36).slice(2)}`)
    this.presenceQueued = false
    this.renderQueued = false

    this.timers = [
      setInterval(() => this.ping(), PING_EVERY_MS),
      setInterval(() => this.heartbeat(), PRESENCE_HEARTBEAT_MS)
    ]
  }

  /** CodeMirror extensions: the binding, local undo history, remote cursors, presence sender. */
  extensions () {
    return [
      history(),
      keymap.of(historyKeymap),
      shareDBBinding(this.doc, { onError: (err) => this.fail(err) }),
      remoteCursors(),
      EditorView.updateListener.of((update) => {
        const byUser = update.transactions.some((tr) => !tr.annotation(remoteOp) &&
          (tr.docChanged || tr.selection))
        if (byUser) this.queuePresence()
      })
    ]
  }

  attach (view) {
    this.view = view
    this.queueRender()
  }

  /** True once the document's text is here and edits can be made (offline too). */
  get editable () {
    return this.refused === null && this.doc.type !== null && !this.creating
  }

  stats () {
    const pending = (this.doc.inflightOp ? 1 : 0) + this.doc.pendingOps.length
    return {
      engine: 'ot',
      connection: this.connectionLabel(),
      pending,
      refused: this.refused,
      error: this.error,
      version: this.doc.version,
      editors: 1 + this.lastSeen.size,
      latencyMs: this.latencyMs,
      loaded: this.doc.type !== null,
      editable: this.editable
    }
  }

  connectionLabel () {
    if (this.refused !== null) return 'refused'
    if (this.connection.state === 'connected') return 'connected'
    if (this.browserOffline) return 'offline'
    return this.everConnected ? 'reconnecting' : 'connecting'
  }

  /** The browser lost or regained the network: close the socket now rather than wait for it. */
  setOnline (online) {
    this.browserOffline = !online
    if (online && this.refused === null) this.socket.reconnect()
    if (!online) this.socket.close()
    this.changed()
  }

  destroy () {
    this.timers.forEach(clearInterval)
    this.socket.close()
  }

  // --- connection and document ---------------------------------------------------------------

  onConnectionState (state, reason) {
    if (state === 'connected') {
      this.everConnected = true
      this.error = null // errors shown so far belonged to the connection that just ended
      this.ping()
      this.queuePresence()
    } else {
      this.latencyMs = null
    }
    if ((state === 'closed' || state === 'stopped') && reason && this.refused === null) {
      this.error = `connection closed: ${reason}`
    }
    this.changed()
  }

  onSubscribed (err) {
    if (err && REFUSALS.has(err.code)) {
      this.refuse(err)
      return
    }
    if (err) {
      this.fail(err)
      setTimeout(() => this.doc.subscribe((again) => this.onSubscribed(again)), RESUBSCRIBE_AFTER_MS)
      return
    }
    if (this.doc.type === null) {
      // A new document: create it. If someone else created it first, ShareDB fetches theirs.
      this.creating = true
      this.doc.create('', otText.type.uri, (createErr) => {
        this.creating = false
        if (createErr && !alreadyCreated(createErr)) this.fail(createErr)
        this.changed()
      })
    }
    this.changed()
  }

  refuse (err) {
    if (this.refused === null) this.refused = err.message || String(err)
    this.socket.close()
    this.changed()
  }

  fail (err) {
    this.error = err && err.message ? err.message : String(err)
    this.changed()
  }

  /**
   * Sees every server message before ShareDB handles it, to remember which op was committed at
   * which version (someone else's op, or the acknowledgement of ours), for placing cursors.
   */
  onReceive (message) {
    if (!message || message.a !== 'op' || message.c !== this.collection || message.d !== this.id) return
    if (typeof message.v !== 'number') return
    if (Array.isArray(message.op)) {
      this.cursors.recordServerOp(message.v, structuredClone(message.op))
    } else {
      const inflight = this.doc.inflightOp
      if (inflight && inflight.op && message.src === inflight.src && message.seq === inflight.seq) {
        this.cursors.recordServerOp(message.v, structuredClone(inflight.op))
      }
    }
    // ShareDB handles the message right after this listener; look at waiting cursors then.
    queueMicrotask(() => {
      if (this.cursors.retryWaiting(this.localState())) this.queueRender()
      this.changed()
    })
  }

  onDocOp (op) {
    this.cursors.applyLocalOp(op)
    this.cursors.retryWaiting(this.localState())
    this.queueRender()
    this.changed()
  }

  localState () {
    const pending = []
    if (this.doc.inflightOp && this.doc.inflightOp.op) pending.push(this.doc.inflightOp.op)
    for (const p of this.doc.pendingOps) if (p.op) pending.push(p.op)
    const text = typeof this.doc.data === 'string' ? this.doc.data : ''
    return { version: this.doc.version ?? 0, pending, length: codePointLength(text) }
  }

  ping () {
    if (this.connection.state !== 'connected') return
    this.pingSentAt = performance.now()
    try {
      this.connection.ping()
    } catch {
      this.pingSentAt = null
    }
  }

  onPong () {
    if (this.pingSentAt == null) return
    this.latencyMs = Math.round(performance.now() - this.pingSentAt)
    this.pingSentAt = null
    this.changed()
  }

  // --- presence -----------------------------------------------------------------------------

  /** Publishes our cursor once no op of ours is unacknowledged (so it is at a server version). */
  queuePresence () {
    if (this.presenceQueued) return
    this.presenceQueued = true
    this.doc.whenNothingPending(() => {
      this.presenceQueued = false
      this.sendPresence()
    })
  }

  sendPresence () {
    if (!this.view || this.doc.type === null || this.refused !== null) return
    const text = this.doc.data
    if (this.view.state.doc.toString() !== text) return
    const { anchor, head } = this.view.state.selection.main
    const value = {
      name: this.user.name,
      colour: this.user.colour,
      anchor: toCodePoints(text, anchor),
      head: toCodePoints(text, head),
      v: this.doc.version
    }
    this.localPresence.submit(value, (err) => { if (err) this.fail(err) })
  }

  heartbeat () {
    if (this.connection.state === 'connected') this.queuePresence()
    const now = Date.now()
    for (const [id, seen] of this.lastSeen) {
      if (now - seen > PRESENCE_EXPIRES_MS) this.forget(id)
    }
  }

  onPresence (id, value) {
    if (value === null) {
      this.forget(id)
      return
    }
    this.lastSeen.set(id, Date.now())
    this.cursors.receive(id, value, this.localState())
    this.queueRender()
    this.changed()
  }

  forget (id) {
    this.lastSeen.delete(id)
    this.cursors.remove(id)
    this.queueRender()
    this.changed()
  }

  /** Hands the cursors to the editor after the current op has reached it (next microtask). */
  queueRender () {
    if (this.renderQueued) return
    this.renderQueued = true
    queueMicrotask(() => {
      this.renderQueued = false
      if (!this.view) return
      const text = this.view.state.doc.toString()
      if (typeof this.doc.data !== 'string' || text !== this.doc.data) return
      const list = this.cursors.list(codePointLength(text)).map((c) => ({
        ...c, anchor: toUtf16(text, c.anchor), head: toUtf16(text, c.head)
      }))
      this.view.dispatch({ effects: setRemoteCursors.of(list) })
    })
  }

  changed () {
    this.onChange()
  }
}

/** ShareDB's "someone created it first" (named code in ShareDB 1+, numeric 4016 before). */
function alreadyCreated (err) {
  return err.code === 'ERR_DOC_ALREADY_CREATED' || err.code === 4016
}
