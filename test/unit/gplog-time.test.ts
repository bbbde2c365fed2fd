import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localTimeIsUtc } from '../../src/log/gplog.js';

test('log stamps: UTC zones are taken by name, any other zone is left to the runtime', () => {
  for (const tz of ['UTC', 'UTC0', ':UTC', '', 'Etc/UTC', 'Etc/GMT', 'GMT+0', 'Zulu', '/usr/share/zoneinfo/Etc/UTC', ':/usr/share/zoneinfo/UTC']) {
    assert.equal(localTimeIsUtc({ TZ: tz }), true, `TZ=${JSON.stringify(tz)}`);
  }
  for (const tz of ['Europe/Berlin', 'America/New_York', 'EST5EDT', 'UTC+3', 'GMT-05', 'Etc/GMT+5', 'Asia/Kolkata', '/usr/share/zoneinfo/Europe/Paris']) {
    assert.equal(localTimeIsUtc({ TZ: tz }), false, `TZ=${JSON.stringify(tz)}`);
  }
});
