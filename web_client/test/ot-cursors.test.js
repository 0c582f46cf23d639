// Remote cursors in an OT document: placed at the sender's version, moved into our text.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RemoteCursors } from '../src/ot-cursors.js'

const alice = (anchor, head, v) => ({ name: 'Alice', colour: '#e6194b', anchor, head, v })
const local = (version, pending = [], length = 100) => ({ version, pending, length })

test('a cursor sent at our version with nothing pending is placed where it was sent', () => {
  const cursors = new RemoteCursors()
  assert.equal(cursors.receive('a', alice(3, 5, 7), local(7)), true)
  assert.deepEqual(cursors.list(100), [{ id: 'a', name: 'Alice', colour: '#e6194b', anchor: 3, head: 5 }])
})

test('a cursor from an older version is moved through the ops committed since', () => {
  const cursors = new RemoteCursors()
  cursors.recordServerOp(2, ['hi ']) // version 2 -> 3: insert 3 code points at 0
  cursors.recordServerOp(3, [10, { d: 2 }]) // version 3 -> 4: delete after the cursor
  cursors.receive('a', alice(4, 4, 2), local(4))
  assert.equal(cursors.list(100)[0].head, 7)
})

test('our own unacknowledged ops move a received cursor too', () => {
  const cursors = new RemoteCursors()
  cursors.receive('a', alice(4, 4, 5), local(5, [['😀😀'], [1, { d: 1 }]]))
  // +2 code points for the emoji inserted at 0, then -1 for the delete before the cursor
  assert.equal(cursors.list(100)[0].head, 5)
})

test('a cursor from a version we have not reached waits, then is placed', () => {
  const cursors = new RemoteCursors()
  assert.equal(cursors.receive('a', alice(6, 6, 9), local(8)), false)
  assert.deepEqual(cursors.list(100), [])
  cursors.recordServerOp(8, ['abc'])
  assert.equal(cursors.retryWaiting(local(9)), true)
  assert.equal(cursors.list(100)[0].head, 6)
})

test('a cursor whose ops were forgotten is hidden until its author sends again', () => {
  const cursors = new RemoteCursors({ historyLimit: 2 })
  for (let v = 0; v < 5; v++) cursors.recordServerOp(v, ['x'])
  assert.equal(cursors.receive('a', alice(1, 1, 1), local(5)), false)
  assert.equal(cursors.receive('a', alice(1, 1, 3), local(5)), true)
  assert.equal(cursors.list(100)[0].head, 3)
})

test('placed cursors follow ops applied to our text', () => {
  const cursors = new RemoteCursors()
  cursors.receive('a', alice(2, 8, 0), local(0))
  cursors.applyLocalOp(['日本']) // insert 2 before both ends
  cursors.applyLocalOp([5, { d: 10 }]) // delete from 5 to 15, covering the head
  const [c] = cursors.list(100)
  assert.equal(c.anchor, 4)
  assert.equal(c.head, 5)
})

test('an insert exactly at a remote cursor leaves the cursor before it', () => {
  const cursors = new RemoteCursors()
  cursors.receive('a', alice(3, 3, 0), local(0))
  cursors.applyLocalOp([3, 'xyz'])
  assert.equal(cursors.list(100)[0].head, 3)
})

test('a null presence removes the cursor', () => {
  const cursors = new RemoteCursors()
  cursors.receive('a', alice(1, 1, 0), local(0))
  cursors.receive('a', null, local(0))
  assert.deepEqual(cursors.list(100), [])
})

test('malformed presence values are ignored rather than drawn', () => {
  const cursors = new RemoteCursors()
  for (const bad of [{}, { anchor: -1, head: 0, v: 0 }, { anchor: 1.5, head: 0, v: 0 }, 'x', 3]) {
    assert.equal(cursors.receive('a', bad, local(0)), false)
  }
  assert.deepEqual(cursors.list(100), [])
})

test('cursors are clamped to the text length', () => {
  const cursors = new RemoteCursors()
  cursors.receive('a', alice(50, 60, 0), local(0, [], 100))
  assert.deepEqual(cursors.list(10).map((c) => [c.anchor, c.head]), [[10, 10]])
})

test('names and colours from other clients are sanitised before drawing', () => {
  const cursors = new RemoteCursors()
  cursors.receive('a', { name: 'x'.repeat(100), colour: 'red;background:url(x)', anchor: 0, head: 0, v: 0 }, local(0))
  cursors.receive('b', { name: 42, colour: '#00ff00', anchor: 0, head: 0, v: 0 }, local(0))
  const [a, b] = cursors.list(10)
  assert.equal(a.name.length, 40)
  assert.equal(a.colour, '#30bced')
  assert.equal(b.name, 'Anonymous')
  assert.equal(b.colour, '#00ff00')
})
