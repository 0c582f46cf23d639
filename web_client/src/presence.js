// Draws other editors' cursors and selections in CodeMirror: a coloured caret with the editor's
// name above it, and a tinted background over the selected range.
//
// The OT session computes where the cursors are (src/ot-cursors.js) and hands them over in
// UTF-16 positions with `setRemoteCursors`; between two hand-overs the decorations follow local
// and remote edits through CodeMirror's own position mapping. (The CRDT session draws cursors
// with y-codemirror.next's plugin instead; the page's CSS styles both alike.)

import { StateEffect, StateField } from '@codemirror/state'
import { Decoration, EditorView, WidgetType } from '@codemirror/view'

/**
 * Replaces the drawn cursors: [{id, name, colour, anchor, head}] with UTF-16 positions.
 * @type {import('@codemirror/state').StateEffectType<Array<object>>}
 */
export const setRemoteCursors = StateEffect.define()

class CaretWidget extends WidgetType {
  constructor (name, colour) {
    super()
    this.name = name
    this.colour = colour
  }

  eq (other) { return other.name === this.name && other.colour === this.colour }

  toDOM () {
    const caret = document.createElement('span')
    caret.className = 'weft-caret'
    caret.style.borderColor = this.colour
    caret.dataset.name = this.name
    const label = document.createElement('span')
    label.className = 'weft-caret-name'
    label.style.backgroundColor = this.colour
    label.textContent = this.name
    caret.appendChild(label)
    return caret
  }

  ignoreEvent () { return true }
}

function decorationsFor (cursors, docLength) {
  const ranges = []
  for (const c of cursors) {
    const anchor = Math.min(c.anchor, docLength)
    const head = Math.min(c.head, docLength)
    const from = Math.min(anchor, head)
    const to = Math.max(anchor, head)
    if (from < to) {
      ranges.push(Decoration.mark({
        class: 'weft-selection',
        attributes: { style: `background-color: ${c.colour}33` }
      }).range(from, to))
    }
    ranges.push(Decoration.widget({
      widget: new CaretWidget(c.name, c.colour),
      side: head === from && from !== to ? -1 : 1
    }).range(head))
  }
  return Decoration.set(ranges, true)
}

const remoteCursorField = StateField.define({
  create: () => Decoration.none,
  update (decorations, tr) {
    for (const effect of tr.effects) {
      if (effect.is(setRemoteCursors)) return decorationsFor(effect.value, tr.state.doc.length)
    }
    return decorations.map(tr.changes)
  },
  provide: (field) => EditorView.decorations.from(field)
})

/** The CodeMirror extension that shows remote cursors handed over with `setRemoteCursors`. */
export function remoteCursors () {
  return [remoteCursorField]
}
