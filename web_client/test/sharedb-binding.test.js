// Offset conversion between CodeMirror (UTF-16 code units) and text-unicode ops (code points),
// checked against the real ot-text-unicode type and CodeMirror's own change application.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChangeSet, Text } from '@codemirror/state'
import otText from 'ot-text-unicode'
import {
  changesToOp, codePointLength, opToChanges, toCodePoints, toUtf16
} from '../src/sharedb-binding.js'

const { type } = otText

/** Applies CodeMirror change specs to a string the way an editor would. */
function applyChanges (text, specs) {
  const set = ChangeSet.of(specs, text.length)
  return set.apply(Text.of(text.split('\n'))).toString()
}

function changeSet (text, specs) {
  return ChangeSet.of(specs, text.length)
}

test('code point length counts a surrogate pair once', () => {
  assert.equal(codePointLength(''), 0)
  assert.equal(codePointLength('abc'), 3)
  assert.equal(codePointLength('😀'), 1)
  assert.equal(codePointLength('a😀b👋🏽'), 5) // 👋🏽 is two code points: hand + skin tone
  assert.equal(codePointLength('日本語'), 3)
  assert.equal(codePointLength('e\u0301'), 2) // combining mark is its own code point
})

test('a lone surrogate counts as one code point, as Python and [...s] count it', () => {
  assert.equal(codePointLength('\ud83d'), 1)
  assert.equal(codePointLength('a\ude00b'), 3)
})

test('positions round-trip between code points and UTF-16 at every boundary', () => {
  const text = 'a😀日e\u0301👋🏽\nz'
  const cps = [...text]
  let utf16 = 0
  for (let cp = 0; cp <= cps.length; cp++) {
    assert.equal(toUtf16(text, cp), utf16, `code point ${cp}`)
    assert.equal(toCodePoints(text, utf16), cp, `utf16 ${utf16}`)
    if (cp < cps.length) utf16 += cps[cp].length
  }
})

test('a code point position past the end is a RangeError', () => {
  assert.throws(() => toUtf16('a😀', 3), RangeError)
})

test('typing after an emoji becomes an op counted in code points', () => {
  const text = 'a😀b'
  const op = changesToOp(changeSet(text, { from: 3, insert: 'X' }), text)
  assert.deepEqual(op, [2, 'X'])
  assert.equal(type.apply(text, op), 'a😀Xb')
})

test('deleting an emoji deletes one code point', () => {
  const text = 'a😀b'
  const op = changesToOp(changeSet(text, { from: 1, to: 3 }), text)
  assert.deepEqual(op, [1, { d: 1 }])
  assert.equal(type.apply(text, op), 'ab')
})

test('replacing a range is a delete followed by an insert', () => {
  const text = '日本語のテキスト'
  const op = changesToOp(changeSet(text, { from: 1, to: 3, insert: '🎉' }), text)
  assert.deepEqual(op, [1, { d: 2 }, '🎉'])
  assert.equal(type.apply(text, op), '日🎉のテキスト')
})

test('several changes in one transaction become one op', () => {
  const text = '👋 hello 🌍 world'
  const specs = [{ from: 0, to: 2, insert: 'Hi' }, { from: 9, to: 11 }, { from: 17, insert: '!' }]
  const op = changesToOp(changeSet(text, specs), text)
  assert.equal(type.apply(text, op), applyChanges(text, specs))
})

test('an op inserting after an astral character lands after it in the editor', () => {
  const text = 'a😀b'
  assert.deepEqual(opToChanges([2, 'X'], text), [{ from: 3, insert: 'X' }])
})

test('an op deleting an astral character removes both its code units', () => {
  const text = 'x👋🏽y'
  const changes = opToChanges([1, { d: 2 }], text)
  assert.deepEqual(changes, [{ from: 1, to: 5 }])
  assert.equal(applyChanges(text, changes), 'xy')
})

test('a delete that names the deleted text is measured in code points', () => {
  const text = 'ab😀cd'
  const changes = opToChanges([2, { d: '😀c' }], text)
  assert.deepEqual(changes, [{ from: 2, to: 5 }])
})

test('an op reaching past the end of the text is refused with a RangeError', () => {
  assert.throws(() => opToChanges([5, 'x'], 'a😀b'), RangeError)
  assert.throws(() => opToChanges([1, { d: 3 }], 'a😀b'), RangeError)
})

test('an op component that is not text-unicode is refused with a TypeError', () => {
  assert.throws(() => opToChanges([1, { i: 'x' }], 'ab'), TypeError)
})

// --- randomized, against the real type --------------------------------------------------------

const ALPHABET = ['a', 'b', ' ', '\n', 'é', 'e\u0301', '日', '本', '😀', '👋🏽', '𝄞', '🇫🇷']

function mulberry32 (seed) {
  return () => {
    seed |= 0; seed = seed + 0x6d2b79f5 | 0
    let t = Math.imul(seed ^ seed >>> 15, 1 | seed)
    t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t
    return ((t ^ t >>> 14) >>> 0) / 4294967296
  }
}

function randomText (rand, maxPieces) {
  let s = ''
  const n = Math.floor(rand() * maxPieces)
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rand() * ALPHABET.length)]
  return s
}

/** Code point boundaries of `text` as UTF-16 offsets (CodeMirror never splits a pair). */
function boundaries (text) {
  const out = [0]
  let at = 0
  for (const ch of text) { at += ch.length; out.push(at) }
  return out
}

function randomChangeSpecs (rand, text) {
  const cuts = boundaries(text)
  const picks = []
  const count = 1 + Math.floor(rand() * 3)
  for (let i = 0; i < count * 2; i++) picks.push(cuts[Math.floor(rand() * cuts.length)])
  picks.sort((x, y) => x - y)
  const specs = []
  for (let i = 0; i < picks.length; i += 2) {
    const spec = { from: picks[i], to: picks[i + 1] }
    if (rand() < 0.7) spec.insert = randomText(rand, 4)
    specs.push(spec)
  }
  return specs
}

function randomOp (rand, text) {
  const len = codePointLength(text)
  let op = []
  let pos = 0
  while (pos < len && rand() < 0.8) {
    const skip = Math.floor(rand() * (len - pos + 1))
    if (skip > 0) op.push(skip)
    pos += skip
    if (rand() < 0.5 && pos < len) {
      const del = 1 + Math.floor(rand() * Math.min(3, len - pos))
      op.push({ d: del })
      pos += del
    }
    if (rand() < 0.6) op.push(randomText(rand, 3) || 'x')
  }
  op = type.normalize(op)
  return op
}

const SEEDS = process.env.WEFT_SEED ? [Number(process.env.WEFT_SEED)] : [1, 2, 3, 42, 2024]

test('random editor changes become ops that produce the same text (seeded)', () => {
  for (const seed of SEEDS) {
    const rand = mulberry32(seed)
    for (let round = 0; round < 400; round++) {
      const text = randomText(rand, 12)
      const specs = randomChangeSpecs(rand, text)
      const expected = applyChanges(text, specs)
      const op = changesToOp(changeSet(text, specs), text)
      assert.equal(type.apply(text, op), expected,
        `seed ${seed} round ${round}: ${JSON.stringify({ text, specs, op })}`)
    }
  }
})

test('random ops become editor changes that produce the same text (seeded)', () => {
  for (const seed of SEEDS) {
    const rand = mulberry32(seed)
    for (let round = 0; round < 400; round++) {
      const text = randomText(rand, 12)
      const op = randomOp(rand, text)
      const changes = opToChanges(op, text)
      assert.equal(applyChanges(text, changes), type.apply(text, op),
        `seed ${seed} round ${round}: ${JSON.stringify({ text, op, changes })}`)
    }
  }
})
