import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backupPrefix, checkTimestamp, cleanFolder, directoryPrefix, folderProblem, goPathClean, keyForPath } from '../../src/storage/keys.js';

test('goPathClean: Go path.Clean, on the examples of Go\'s own documentation and tests', () => {
  const cases: Array<[string, string]> = [
    ['', '.'],
    ['a/c', 'a/c'],
    ['a//c', 'a/c'],
    ['a/c/.', 'a/c'],
    ['a/c/b/..', 'a/c'],
    ['/../a/c', '/a/c'],
    ['/../a/b/../././/c', '/a/c'],
    ['/', '/'],
    ['//', '/'],
    ['.', '.'],
    ['./', '.'],
    ['..', '..'],
    ['../../a', '../../a'],
    ['a/../..', '..'],
    ['a/..', '.'],
    ['/a/..', '/'],
    ['abc/', 'abc'],
    ['/abc//def/', '/abc/def'],
    ['a/..b/.c', 'a/..b/.c'],
    ['...', '...'],
  ];
  for (const [input, cleaned] of cases) assert.equal(goPathClean(input), cleaned, JSON.stringify(input));
});

/**
 * The key the Go plugin's objects have, for a folder: it sends `/<bucket>/<folder>/<last four
 * components>` and aws-sdk-go v1 runs path.Clean over that whole path (keeping only a final
 * slash, which an object path never has); the key is what follows `/<bucket>/`. Each expected
 * key below is path.Clean("/bkt/" + folder + "/backups/20240102/20240102030405/x") without its
 * "/bkt/", worked out by hand with path.Clean's rules:
 *   - doubled slashes collapse: "/bkt/prod/cluster1//backups" -> "/bkt/prod/cluster1/backups"
 *   - "." goes: "/bkt/./a/backups" -> "/bkt/a/backups"
 *   - ".." removes the element before it: "/bkt/a/../b/backups" -> "/bkt/b/backups"
 */
const GO_KEYS: Array<[folder: string, key: string]> = [
  ['prod/cluster1', 'prod/cluster1'],
  ['prod/cluster1/', 'prod/cluster1'], // "/bkt/prod/cluster1//backups/..."
  ['/prod', 'prod'], // "/bkt//prod/backups/..."
  ['/prod/', 'prod'],
  ['a//b', 'a/b'],
  ['//a///b//', 'a/b'],
  ['./a', 'a'],
  ['a/./b', 'a/b'],
  ['a/.', 'a'],
  ['a/../b', 'b'],
  ['a/b/..', 'a'],
  ['a/b/../../c', 'c'],
  ['x/y/z/../../w/.', 'x/w'],
  ['0123', '0123'],
  ['a/..b', 'a/..b'], // "..b" is a name, not a parent
  ['...', '...'],
  ['with space/ü', 'with space/ü'], // escaping does not touch "/" or ".", so cleaning acts alike
];

test('keys: the key the Go plugin sends for every kind of folder, for writing, reading and deleting', () => {
  const tail = 'backups/20240102/20240102030405/x';
  for (const [folder, cleaned] of GO_KEYS) {
    // Our own path.Clean over the Go plugin's request path agrees with the hand-worked keys.
    assert.equal(goPathClean(`/bkt/${folder}/${tail}`), `/bkt/${cleaned}/${tail}`, folder);
    assert.equal(cleanFolder(folder), cleaned, folder);
    assert.equal(keyForPath(folder, `/data/gpseg0/${tail}`), `${cleaned}/${tail}`, folder);
    assert.equal(backupPrefix(folder, '20240102030405'), `${cleaned}/backups/20240102/20240102030405/`, folder);
    assert.equal(directoryPrefix(folder, undefined, 'list_directory').prefix, `${cleaned}/`, folder);
  }
});

test('keys: a folder that cleans to nothing or climbs out of the bucket is refused, saying why', () => {
  // Go would send "/bkt/backups/..." (backups at the bucket root) for these...
  for (const folder of ['/', '//', '.', './', 'a/..', 'a/b/../..', './/.']) {
    assert.match(folderProblem(folder) ?? '', /cleans to nothing/, folder);
    assert.throws(() => keyForPath(folder, '/d/backups/20240102/20240102030405/x'), /cleans to nothing/, folder);
  }
  // ...and for these a ".." eats the bucket segment: "/bkt/../x/backups" is bucket x.
  for (const folder of ['..', '../x', 'a/../../x', '/../x', 'a/b/../../../c']) {
    assert.match(folderProblem(folder) ?? '', /climb out of the bucket/, folder);
    assert.throws(() => cleanFolder(folder), new RegExp(`folder "${folder.replace(/[.]/g, '\\.')}" its "\\.\\." segments climb out`), folder);
  }
  assert.equal(folderProblem('a/../b'), undefined);
});

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

test('keys: short paths and dot components are refused', () => {
  assert.throws(() => keyForPath('f', 'a/b/c'), /backups\/<YYYYMMDD>\/<timestamp>\/<file>/);
  assert.throws(() => keyForPath('f', '/x/backups/20240102/../file'), /cannot map/);
  assert.throws(() => keyForPath('f', '/x/backups/20240102/./file'), /cannot map/);
  assert.throws(() => keyForPath('f', ''), /cannot map/);
});

test('keys: a backup prefix ends with a slash so no other backup matches', () => {
  assert.equal(backupPrefix('f', '20240102030405'), 'f/backups/20240102/20240102030405/');
  assert.equal(backupPrefix('f/', '99989012345678'), 'f/backups/99989012/99989012345678/');
});

test('keys: timestamps must be exactly 14 digits, any digits', () => {
  checkTimestamp('99989012345678');
  for (const bad of ['', '2024010203040', '202401020304050', '2024010203040a', ' 20240102030405', '../../../../x']) {
    assert.throws(() => checkTimestamp(bad), /exactly 14 digits/, bad);
  }
});

test('keys: directory paths that begin with the folder are relative to the bucket, as in the Go plugin; others to the folder', () => {
  const dir = (folder: string, path: string | undefined) => directoryPrefix(folder, path, 'x');
  assert.deepEqual(dir('f', undefined), { prefix: 'f/', relativeTo: 'folder' });
  assert.deepEqual(dir('f', 'backups/20240102'), { prefix: 'f/backups/20240102/', relativeTo: 'folder' });
  assert.deepEqual(dir('f', 'backups/'), { prefix: 'f/backups/', relativeTo: 'folder' });
  assert.deepEqual(dir('cluster1', 'cluster1/backups/20240102'), { prefix: 'cluster1/backups/20240102/', relativeTo: 'bucket' });
  assert.deepEqual(dir('cluster1', 'cluster1'), { prefix: 'cluster1/', relativeTo: 'bucket' });
  // The folder as the Go plugin's keys have it: a Go config's `prod/c1/` and a script's `prod/c1/backups`.
  assert.deepEqual(dir('prod/c1/', 'prod/c1/backups'), { prefix: 'prod/c1/backups/', relativeTo: 'bucket' });
  // A name that only starts like the folder is inside it.
  assert.deepEqual(dir('cluster1', 'cluster10/backups'), { prefix: 'cluster1/cluster10/backups/', relativeTo: 'folder' });
});

test('keys: directory paths stay inside the folder', () => {
  for (const bad of ['', '/', '.', '..', '/abs', 'a/../..', 'a/./b', 'a//b', '../sibling', 'f/../g', '/f/backups']) {
    assert.throws(() => directoryPrefix('f', bad, 'delete_directory'), /must be relative to the bucket or to the folder "f" and stay inside the folder/, bad);
  }
});
