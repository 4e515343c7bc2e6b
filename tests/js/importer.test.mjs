// The import page's progress bar: values are clamped to 0-100 and shown as a percentage.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { showProgress } from '../../static/src/importer.js'

function fakeArea () {
  const bar = { value: 0 }
  const percent = { textContent: '' }
  return {
    bar,
    percent,
    querySelector (selector) {
      return selector === 'progress' ? bar : selector === '[data-import-percent]' ? percent : null
    }
  }
}

test('progress is shown as a clamped percentage', () => {
  const area = fakeArea()
  showProgress(area, 42)
  assert.equal(area.bar.value, 42)
  assert.equal(area.percent.textContent, '42 %')
  showProgress(area, 250)
  assert.equal(area.bar.value, 100)
  showProgress(area, 'not a number')
  assert.equal(area.bar.value, 0)
  assert.equal(area.percent.textContent, '0 %')
})
