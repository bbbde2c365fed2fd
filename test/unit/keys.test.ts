import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backupPrefix, checkTimestamp, folderSubPrefix, keyForPath } from '../../src/storage/keys.js';

test('keys: the Go plugin layout, from the last four path components', () => {
  assert.equal(
    keyForPath('s3/Dir', '/a/b/c/tmp/datadir/gpseg-1/backups/20180101/20180101082233/backup_file'),
    's3/Dir/backups/20180101/20180101082233/backup_file',
  );
  assert.equal(
    keyForPath('f', '/data/gpseg0/backups/20240102/20240102030405/gpbackup_0_20240102030405_16384.gz'),
    'f/backups/20240102/20240102030405/gpbackup_0_20240102030405_16384.gz',
  );
});

test('keys: the folder is used verbatim, as the Go plugin does (trailing slash gives //)', () => {
  assert.equal(keyForPath('f/', '/d/backups/20240102/20240102030405/x'), 'f//backups/20240102/20240102030405/x');
  assert.equal(keyForPath('0123', '/d/backups/20240102/20240102030405/x'), '0123/backups/20240102/20240102030405/x');
});

test('keys: short paths and dot components are refused', () => {
  assert.throws(() => keyForPath('f', 'a/b/c'), /backups\/<YYYYMMDD>\/<timestamp>\/<file>/);
  assert.throws(() => keyForPath('f', '/x/backups/20240102/../file'), /cannot map/);
  assert.throws(() => keyForPath('f', '/x/backups/20240102/./file'), /cannot map/);
  assert.throws(() => keyForPath('f', ''), /cannot map/);
});

test('keys: a backup prefix ends with a slash so no other backup matches', () => {
  assert.equal(backupPrefix('f', '20240102030405'), 'f/backups/20240102/20240102030405/');
  assert.equal(backupPrefix('f/', '99989012345678'), 'f//backups/99989012/99989012345678/');
});

test('keys: timestamps must be exactly 14 digits, any digits', () => {
  checkTimestamp('99989012345678');
  for (const bad of ['', '2024010203040', '202401020304050', '2024010203040a', ' 20240102030405', '../../../../x']) {
    assert.throws(() => checkTimestamp(bad), /exactly 14 digits/, bad);
  }
});

test('keys: directory paths stay below the folder', () => {
  assert.equal(folderSubPrefix('f', undefined, 'x'), 'f/');
  assert.equal(folderSubPrefix('f', 'backups/20240102', 'x'), 'f/backups/20240102/');
  assert.equal(folderSubPrefix('f', 'backups/', 'x'), 'f/backups/');
  for (const bad of ['', '/', '.', '..', '/abs', 'a/../..', 'a/./b', 'a//b', '../sibling']) {
    assert.throws(() => folderSubPrefix('f', bad, 'delete_directory'), /must be relative to the folder/, bad);
  }
});
