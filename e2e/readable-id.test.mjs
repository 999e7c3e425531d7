// The numbers people read (crates/anxin-api/assets/common/format.js): an incident's, an
// order's or a visit's number is `zone · 2⁴⁰ + n`, shown as the zone and n joined by a raised
// dot (U+22C5), zone 0's as they are; and what a person types back, in either form. No
// browser, no daemon: node:test alone.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReadableId, readableId } from '../crates/anxin-api/assets/common/format.js';

const SPAN = 2 ** 40;
// The dot between zone and number: U+22C5, which looks like the middle dot U+00B7.
const DOT = '\u22C5';

describe('readableId', () => {
  it('leaves zone 0’s numbers as they are', () => {
    assert.equal(readableId(1), '1');
    assert.equal(readableId(17), '17');
    assert.equal(readableId(SPAN - 1), '1099511627775');
    assert.equal(readableId('17'), '17', 'as a refusal’s args carry it');
  });

  it('shows another zone’s as zone⋅n', () => {
    assert.equal(readableId(SPAN + 1), `1${DOT}1`, 'zone 1’s first');
    assert.equal(readableId(1_099_511_627_793), `1${DOT}17`);
    assert.equal(readableId(String(SPAN + 17)), `1${DOT}17`);
    assert.equal(readableId(2 * SPAN + 1_000_000), `2${DOT}1000000`);
  });

  it('is exact up to the last zone’s largest number, 2⁵³ − 1', () => {
    assert.equal(Number.MAX_SAFE_INTEGER, 8191 * SPAN + (SPAN - 1));
    assert.equal(readableId(Number.MAX_SAFE_INTEGER), `8191${DOT}1099511627775`);
    assert.equal(readableId(8191 * SPAN + 1), `8191${DOT}1`);
  });

  it('passes through what is not such a number', () => {
    assert.equal(readableId(null), '');
    assert.equal(readableId(undefined), '');
    assert.equal(readableId('abc'), 'abc');
    assert.equal(readableId(-3), '-3');
    assert.equal(readableId(1.5), '1.5');
    assert.equal(readableId(2 ** 53), String(2 ** 53), 'beyond exact: as sent');
  });
});

describe('parseReadableId', () => {
  it('reads zone 0’s numbers and raw ids, with or without #', () => {
    assert.equal(parseReadableId('17'), 17);
    assert.equal(parseReadableId('#17'), 17);
    assert.equal(parseReadableId('  # 17 '), 17);
    assert.equal(parseReadableId('1099511627793'), SPAN + 17);
    assert.equal(parseReadableId('＃１７'), 17, 'full-width, as an IME types it');
  });

  it('reads zone⋅n with whatever dot or separator a keyboard has', () => {
    // The page's dot, the Latin middle dot a Chinese IME types, and what other keyboards have.
    for (const typed of [`1${DOT}17`, `#1${DOT}17`, '1·17', '#1·17', '1・17', '1.17', '1-17', '1_17', '1 17', '#1 · 17', '１·１７']) {
      assert.equal(parseReadableId(typed), SPAN + 17, typed);
    }
    assert.equal(parseReadableId('0·17'), 17, 'zone 0 written out');
    assert.equal(parseReadableId('8191·1099511627775'), Number.MAX_SAFE_INTEGER);
  });

  it('refuses what is no number of any zone', () => {
    for (const typed of ['', '#', 'abc', '1·', '·17', '1·0', '8192·1', '1·1099511627776', '1·2·3', '1+17', '99999999999999999']) {
      assert.equal(parseReadableId(typed), null, typed);
    }
  });

  it('reads back what readableId shows', () => {
    const ids = [1, 17, SPAN - 1, SPAN + 1, SPAN + 17, 3 * SPAN + 123_456, 8191 * SPAN + 1, Number.MAX_SAFE_INTEGER];
    for (const id of ids) {
      assert.equal(parseReadableId(readableId(id)), id, readableId(id));
      assert.equal(parseReadableId(`#${readableId(id)}`), id);
    }
  });
});
