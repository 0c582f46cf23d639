// Cross-check driver for Weft's Python OT type (tests/ot/test_npm_crosscheck.py).
//
// Reads a JSON array of cases on stdin, runs each through the real npm `ot-text-unicode` type
// and prints a JSON array of results in the same order:
//   {"ok": <result>} on success, {"err": "<message>"} when the npm type throws.
// A case is {"fn": name, "args": [...]}; name is one of apply, transform, compose, normalize,
// checkOp, transformPosition, transformSelection, makeInvertible, invert, stripInvertible,
// isInvertible, insert, remove.
'use strict'
const {type, insert, remove} = require('ot-text-unicode')

const fns = {
  apply: (doc, op) => type.apply(doc, op),
  transform: (op, other, side) => type.transform(op, other, side),
  compose: (a, b) => type.compose(a, b),
  normalize: (op) => type.normalize(op),
  checkOp: (op) => { type.checkOp(op); return true },
  transformPosition: (cursor, op) => type.transformPosition(cursor, op),
  transformSelection: (sel, op) => type.transformSelection(sel, op),
  makeInvertible: (op, doc) => type.makeInvertible(op, doc),
  invert: (op) => type.invert(op),
  stripInvertible: (op) => type.stripInvertible(op),
  isInvertible: (op) => type.isInvertible(op),
  insert: (pos, text) => insert(pos, text),
  remove: (pos, textOrLen) => remove(pos, textOrLen),
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  const cases = JSON.parse(input)
  const results = cases.map(({fn, args}) => {
    const f = fns[fn]
    if (!f) return {err: `unknown fn ${fn}`}
    try {
      const ok = f(...args)
      return {ok: ok === undefined ? null : ok}
    } catch (e) {
      return {err: String(e && e.message)}
    }
  })
  process.stdout.write(JSON.stringify(results))
})
