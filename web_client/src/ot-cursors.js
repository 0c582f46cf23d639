// Other editors' cursors in an OT document, kept in code points (the unit of text-unicode ops).
//
// ShareDB's per-document presence would transform cursors for us, but the server refuses it for
// text-unicode, so cursors travel on a presence channel as plain values:
//   {name, colour, anchor, head, v}
// where anchor/head are code points in the sender's text *at server version v* (the sender only
// publishes when it has no unacknowledged ops, so its text is exactly version v).
//
// To show such a cursor here it must be moved into our local text, which is the server text at
// our `doc.version` followed by our own unacknowledged ops. So it is transformed through the
// server ops v .. version-1 (recorded as they arrive) and then through our pending ops, with
// ot-text-unicode's transformPosition. A cursor from the future (v > our version: its op is still
// on the way to us) waits until we reach v. After placement, every op applied to our text moves
// the cursors again. Pure: no ShareDB, no DOM, so node tests drive it directly.

import otText from 'ot-text-unicode'

const { transformPosition } = otText.type

/**
 * @typedef {{version: number, pending: Array<any[]>, length: number}} LocalState
 *   version: our doc.version; pending: ops applied locally but not acknowledged, in order
 *   (ShareDB's inflightOp then pendingOps); length: our text's length in code points.
 * @typedef {{id: string, name: string, colour: string, anchor: number, head: number}} Cursor
 */

export class RemoteCursors {
  /** @param {{historyLimit?: number}} [options] how many server ops to remember for catching up */
  constructor ({ historyLimit = 1000 } = {}) {
    this.historyLimit = historyLimit
    /** @type {Map<number, any[]>} server op that took the document from version v to v+1 */
    this.history = new Map()
    /** @type {Map<string, Cursor>} cursors placed in our local text */
    this.placed = new Map()
    /** @type {Map<string, object>} presence values waiting for ops we have not received yet */
    this.waiting = new Map()
  }

  /** Remembers the op committed at `version` (someone else's, or our own when acknowledged). */
  recordServerOp (version, op) {
    this.history.set(version, op)
    if (this.history.size > this.historyLimit) {
      const oldest = this.history.keys().next().value
      this.history.delete(oldest)
    }
  }

  /** Moves every placed cursor through an op just applied to our local text. */
  applyLocalOp (op) {
    for (const cursor of this.placed.values()) {
      cursor.anchor = transformPosition(cursor.anchor, op)
      cursor.head = transformPosition(cursor.head, op)
    }
  }

  /**
   * Takes a presence value from another editor; `null` means it left.
   * Returns true when the cursor is now placed, false when it waits or was dropped.
   * @param {string} id @param {object|null} value @param {LocalState} local
   */
  receive (id, value, local) {
    this.waiting.delete(id)
    if (!isCursorValue(value)) {
      this.placed.delete(id)
      return false
    }
    if (value.v > local.version) {
      this.waiting.set(id, value)
      return false
    }
    const anchor = this.catchUp(value.anchor, value.v, local)
    const head = this.catchUp(value.head, value.v, local)
    if (anchor === null || head === null) {
      // Too old to transform (ops forgotten): hide it until its author moves again.
      this.placed.delete(id)
      return false
    }
    const name = displayName(value.name)
    this.placed.set(id, { id, name, colour: safeColour(value.colour), anchor, head })
    return true
  }

  /** Places waiting cursors whose version we have now reached. Returns true if any was placed. */
  retryWaiting (local) {
    let placedAny = false
    for (const [id, value] of [...this.waiting]) {
      if (value.v <= local.version) placedAny = this.receive(id, value, local) || placedAny
    }
    return placedAny
  }

  remove (id) {
    this.waiting.delete(id)
    this.placed.delete(id)
  }

  /** Placed cursors, clamped to our text's length. @param {number} length in code points */
  list (length) {
    return [...this.placed.values()].map((c) => ({
      ...c,
      anchor: Math.min(Math.max(c.anchor, 0), length),
      head: Math.min(Math.max(c.head, 0), length)
    }))
  }

  catchUp (position, fromVersion, local) {
    let pos = position
    for (let v = fromVersion; v < local.version; v++) {
      const op = this.history.get(v)
      if (!op) return null
      pos = transformPosition(pos, op)
    }
    for (const op of local.pending) pos = transformPosition(pos, op)
    return Math.min(Math.max(pos, 0), local.length)
  }
}

function isCursorValue (value) {
  return value !== null && typeof value === 'object' &&
    Number.isInteger(value.anchor) && Number.isInteger(value.head) && Number.isInteger(value.v) &&
    value.anchor >= 0 && value.head >= 0 && value.v >= 0
}

/** Names come from other clients: keep them short strings (they are rendered as text only). */
function displayName (name) {
  return typeof name === 'string' && name.trim() !== '' ? name.trim().slice(0, 40) : 'Anonymous'
}

/** Colours end up in a style attribute, so only #rrggbb is accepted. */
function safeColour (colour) {
  return typeof colour === 'string' && /^#[0-9a-fA-F]{6}$/.test(colour) ? colour : '#30bced'
}
