import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EditorSelection, EditorState } from '@codemirror/state'
import { insertLink, toggleBlock, toggleInline } from '../../static/src/collab/toolbar.js'

/**
 * The part of an EditorView the commands use: its state, and dispatch applying what they do.
 *
 * @param {string} doc
 * @param {boolean} readOnly
 */
function viewOf (doc, readOnly) {
  const view = {
    state: EditorState.create({ doc, selection: EditorSelection.single(0, 4), extensions: [EditorState.readOnly.of(readOnly)] }),
    dispatched: 0,
    /** @param {any} spec */
    dispatch (spec) {
      this.dispatched += 1
      this.state = (spec.state ? spec : this.state.update(spec)).state
    }
  }
  return view
}

const COMMANDS = {
  bold: toggleInline('**'),
  bullet: toggleBlock('bullet'),
  link: insertLink(() => 'https://example.eu/', 'Address?')
}

test('formatting commands write Markdown into an editable clause', () => {
  for (const [name, run] of Object.entries(COMMANDS)) {
    const view = viewOf('Text of the clause', false)
    assert.equal(run(view), true, name)
    assert.notEqual(view.state.doc.toString(), 'Text of the clause', name)
  }
})

test('formatting commands change nothing in a read-only editor (a reader, or a page not yet synced)', () => {
  for (const [name, run] of Object.entries(COMMANDS)) {
    const view = viewOf('Text of the clause', true)
    assert.equal(run(view), false, name)
    assert.equal(view.dispatched, 0, name)
    assert.equal(view.state.doc.toString(), 'Text of the clause', name)
  }
})
