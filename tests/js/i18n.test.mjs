import { test } from 'node:test'
import assert from 'node:assert/strict'

// The page's catalogue as the server writes it (codedraft/i18n.py), here for Polish.
globalThis.document = {
  getElementById: (id) => id === 'script-messages'
    ? {
        textContent: JSON.stringify({
          language: 'pl',
          messages: { 'Offline — %(changes)s pending': 'Brak połączenia — oczekuje: %(changes)s', Saved: 'Zapisano' },
          plurals: { '%(num)s change': { one: '%(num)s zmiana', few: '%(num)s zmiany', many: '%(num)s zmian' } }
        })
      }
    : null
}
const { gettext, ngettext } = await import('../../static/src/i18n.js')
const { describeStatus } = await import('../../static/src/collab/status.js')

test('messages and placeholders come from the page catalogue', () => {
  assert.equal(gettext('Saved'), 'Zapisano')
  assert.equal(gettext('Not in the catalogue: %(x)s', { x: 1 }), 'Not in the catalogue: 1')
  assert.equal(gettext('%(missing)s stays'), '%(missing)s stays')
})

test('plural forms follow the language: one, few, many', () => {
  assert.deepEqual([1, 2, 5, 22, 25].map((n) => ngettext('%(num)s change', '%(num)s changes', n)),
    ['1 zmiana', '2 zmiany', '5 zmian', '22 zmiany', '25 zmian'])
})

test('the editor status line speaks the page language', () => {
  assert.deepEqual(describeStatus({ status: 'offline', pending: 3 }),
    { text: 'Brak połączenia — oczekuje: 3 zmiany', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'synced', pending: 0 }), { text: 'Zapisano', state: 'saved' })
})
