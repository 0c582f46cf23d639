// CodeMirror 6 <-> ShareDB binding for plain-text documents of the `text-unicode` OT type.
//
// CodeMirror counts positions in UTF-16 code units (JavaScript string indices); `text-unicode`
// counts Unicode code points, so "😀" is 2 in the editor and 1 in an op. Every position crossing
// the boundary goes through the conversions below. The conversion functions are pure (they only
// need @codemirror/state) so node tests can check them against the real `ot-text-unicode` type.
//
// Invariant kept by the binding: the editor's text always equals `doc.data` (ShareDB's local
// snapshot, which includes ops not yet acknowledged by the server).

import { Annotation, Transaction } from '@codemirror/state'
import { ViewPlugin } from '@codemirror/view'

/** Marks transactions that apply a remote op, so the binding does not send them back. */
export const remoteOp = Annotation.define()

/** Number of code points in `s`; a lone surrogate counts as one, as in Python and `[...s]`. */
export function codePointLength (s) {
  let n = s.length
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) { n--; i++ }
    }
  }
  return n
}

/** UTF-16 length of the first `codePoints` code points of `s`, starting at UTF-16 index `from`. */
export function utf16Advance (s, from, codePoints) {
  let i = from
  for (let k = 0; k < codePoints; k++) {
    if (i >= s.length) {
      throw new RangeError(`position is ${codePoints - k} code point(s) past the end of the text`)
    }
    const c = s.charCodeAt(i)
    const d = s.charCodeAt(i + 1)
    i += (c >= 0xd800 && c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) ? 2 : 1
  }
  return i - from
}

/** Code point position -> UTF-16 position in `text`. Throws if `cp` is past the end. */
export function toUtf16 (text, cp) {
  return utf16Advance(text, 0, cp)
}

/** UTF-16 position -> code point position in `text`. */
export function toCodePoints (text, utf16) {
  return codePointLength(text.slice(0, utf16))
}

/**
 * Turns a CodeMirror ChangeSet made on `oldText` into a text-unicode op.
 *
 * Walks the changes once in document order, counting code points only in the stretches between
 * and inside changes, so the cost is one pass over the text up to the last change.
 */
export function changesToOp (changes, oldText) {
  const op = []
  let at16 = 0 // UTF-16 position in oldText reached so far
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    const skip = codePointLength(oldText.slice(at16, fromA))
    const del = codePointLength(oldText.slice(fromA, toA))
    const ins = inserted.toString()
    if (skip > 0) pushSkip(op, skip)
    if (del > 0) op.push({ d: del })
    if (ins.length > 0) op.push(ins)
    at16 = toA
  })
  return op
}

function pushSkip (op, n) {
  const last = op[op.length - 1]
  if (typeof last === 'number') op[op.length - 1] = last + n
  else op.push(n)
}

/**
 * Turns a text-unicode op into CodeMirror change specs ({from, to, insert}) on `text`.
 *
 * All positions refer to `text` (the document before the op), which is how CodeMirror reads an
 * array of changes in one transaction. Throws a RangeError if the op reaches past the end.
 */
export function opToChanges (op, text) {
  const changes = []
  let at16 = 0
  for (const c of op) {
    if (typeof c === 'number') {
      at16 += utf16Advance(text, at16, c)
    } else if (typeof c === 'string') {
      changes.push({ from: at16, insert: c })
    } else if (c && (typeof c.d === 'number' || typeof c.d === 'string')) {
      const n = typeof c.d === 'number' ? c.d : codePointLength(c.d)
      const to = at16 + utf16Advance(text, at16, n)
      changes.push({ from: at16, to })
      at16 = to
    } else {
      throw new TypeError(`not a text-unicode op component: ${JSON.stringify(c)}`)
    }
  }
  return changes
}

/**
 * The binding as a CodeMirror extension.
 *
 * `doc` is a subscribed ShareDB Doc of type text-unicode. Local edits are submitted as ops;
 * remote ops (ShareDB 'op' events whose source is not ours) are applied as transactions carrying
 * `remoteOp`, kept out of the undo history. A 'load' or 'create' event (first snapshot, ShareDB's
 * hard rollback after a rejected op, a create by anyone) replaces the editor text with `doc.data`.
 * `onError(err)` hears errors from submitting ops.
 */
export function shareDBBinding (doc, { onError = (err) => console.error(err) } = {}) {
  return ViewPlugin.define((view) => new Binding(view, doc, onError))
}

const SOURCE = 'codemirror'

class Binding {
  constructor (view, doc, onError) {
    this.view = view
    this.doc = doc
    this.onError = onError
    this.onOp = (op, source) => { if (source !== SOURCE) this.applyRemote(op) }
    this.onLoad = () => this.resetText()
    doc.on('op', this.onOp)
    doc.on('load', this.onLoad)
    doc.on('create', this.onLoad)
    if (doc.type) queueMicrotask(() => this.resetText())
  }

  /** Sends local edits: every transaction not made by this binding becomes one op. */
  update (update) {
    if (!update.docChanged || !this.doc.type) return
    for (const tr of update.transactions) {
      if (!tr.docChanged || tr.annotation(remoteOp)) continue
      const op = changesToOp(tr.changes, tr.startState.doc.toString())
      if (op.length === 0) continue
      this.doc.submitOp(op, { source: SOURCE }, (err) => { if (err) this.onError(err) })
    }
  }

  applyRemote (op) {
    const text = this.view.state.doc.toString()
    let changes
    try {
      changes = opToChanges(op, text)
    } catch (err) {
      // The editor no longer matches doc.data: resynchronise rather than diverge silently.
      this.onError(err)
      this.resetText()
      return
    }
    this.view.dispatch({
      changes,
      annotations: [remoteOp.of(true), Transaction.addToHistory.of(false)]
    })
  }

  resetText () {
    const data = typeof this.doc.data === 'string' ? this.doc.data : ''
    if (this.view.state.doc.toString() === data) return
    this.view.dispatch({
      changes: { from: 0, to: this.view.state.doc.length, insert: data },
      annotations: [remoteOp.of(true), Transaction.addToHistory.of(false)]
    })
  }

  destroy () {
    this.doc.removeListener('op', this.onOp)
    this.doc.removeListener('load', this.onLoad)
    this.doc.removeListener('create', this.onLoad)
  }
}
