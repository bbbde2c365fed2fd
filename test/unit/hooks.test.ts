/** The setup hooks' checks against the in-memory store: requests made, messages, and what a failure leaves behind. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { backupPreflight, backupWriteCheck, reportKey, restoreCheck } from '../../src/protocol/hooks.js';
import { StoreRequestError } from '../../src/storage/store.js';
import { MemoryStore, type Op } from '../support/memory-store.js';

// Anything logged goes to ~/gpAdminLogs: keep it out of the real HOME.
const home = mkdtempSync(join(tmpdir(), 'gpb-s3-hooks-'));
process.env.HOME = home;
after(() => rmSync(home, { recursive: true, force: true }));

const HOOK = 'setup_plugin_for_backup';
const FOLDER = 'cluster1/prod';
const REPORT = `${FOLDER}/backups/20240102/20240102030405/gpbackup_20240102030405_report`;

function accessDenied(what: string): StoreRequestError {
  return new StoreRequestError(`${what}: AccessDenied: Access Denied (HTTP 403)`, 403, 'AccessDenied');
}

/** Rejects with an error whose message (not its String(), which starts with the class name) matches. */
async function rejectsWith(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: Error) => {
    assert.match(err.message, message);
    return true;
  });
}

/** A store that answers AccessDenied to every request of these operations. */
function denying(...ops: Op[]): MemoryStore {
  const store = new MemoryStore('bkt');
  store.fault = (op, key) => {
    if (ops.includes(op)) throw accessDenied(`${op} ${key}`);
  };
  return store;
}

describe('reportKey', () => {
  test('the backup\'s own report object, as the Go plugin names it, from the local backup directory', () => {
    assert.equal(reportKey(FOLDER, '/data/coordinator/backups/20240102/20240102030405', HOOK), REPORT);
    assert.equal(reportKey(`${FOLDER}/`, '/data/gpseg0/backups/20240102/20240102030405/', HOOK), REPORT);
    // Any other directory: its last four components, as the Go plugin keys it.
    assert.equal(reportKey(FOLDER, '/tmp/a/elsewhere', HOOK), `${FOLDER}/tmp/a/elsewhere/gpbackup_elsewhere_report`);
    assert.throws(() => reportKey(FOLDER, '/tmp/elsewhere', HOOK), /^PluginError: setup_plugin_for_backup: local backup directory "\/tmp\/elsewhere": cannot map/);
  });
});

describe('coordinator preflight before a backup', () => {
  test('writes the empty report object, reads its size, lists it, and starts, fills and aborts a multipart upload: six requests, no delete', async () => {
    const store = new MemoryStore('bkt');
    await backupPreflight(store, HOOK, FOLDER, REPORT);
    assert.deepEqual(store.calls.map(c => c.op), ['put', 'head', 'list', 'create', 'part', 'abort']);
    assert.equal(store.calls.find(c => c.op === 'list')?.key, REPORT);
    const dir = REPORT.slice(0, REPORT.lastIndexOf('/') + 1);
    assert.ok(store.calls.every(c => c.key.startsWith(dir)), 'every request is in the backup directory');
    assert.deepEqual([...store.objects.keys()], [REPORT], 'only the report object, as the Go plugin leaves it');
    assert.equal(store.objects.get(REPORT)!.length, 0);
    assert.equal(store.uploads.size, 0);
  });

  test('a store that refuses every delete passes', async () => {
    const store = denying('delete');
    await backupPreflight(store, HOOK, FOLDER, REPORT);
    assert.equal(store.count('delete'), 0);
  });

  const denials: Array<{ op: Op; action: RegExp; doing: RegExp }> = [
    { op: 'put', action: /the credentials need s3:PutObject$/, doing: /cannot write objects/ },
    { op: 'head', action: /the credentials need s3:GetObject$/, doing: /cannot read objects/ },
    { op: 'list', action: /the credentials need s3:ListBucket$/, doing: /cannot list objects/ },
    { op: 'create', action: /the credentials need s3:PutObject \(multipart upload\)$/, doing: /cannot start multipart uploads/ },
    { op: 'part', action: /the credentials need s3:PutObject \(multipart upload\)$/, doing: /cannot upload parts/ },
  ];
  for (const { op, action, doing } of denials) {
    test(`denied ${op}: names the IAM action, aborts a started upload`, async () => {
      const store = denying(op);
      await assert.rejects(backupPreflight(store, HOOK, FOLDER, REPORT), (err: Error) => {
        assert.match(err.message, doing);
        assert.match(err.message, action);
        assert.match(err.message, /^setup_plugin_for_backup: cannot .* under s3:\/\/bkt\/cluster1\/prod\/: AccessDenied \(HTTP 403\): /);
        return true;
      });
      assert.deepEqual([...store.objects.keys()], op === 'put' ? [] : [REPORT]);
      assert.equal(store.uploads.size, 0);
      // An upload that was started is aborted; none is aborted that was not.
      assert.equal(store.count('abort'), op === 'part' ? 1 : 0);
    });
  }

  test('denied abort: s3:AbortMultipartUpload named, the upload reported as left', async () => {
    const store = denying('abort');
    await rejectsWith(
      backupPreflight(store, HOOK, FOLDER, REPORT),
      /cannot abort multipart uploads under s3:\/\/bkt\/cluster1\/prod\/: AccessDenied \(HTTP 403\): the credentials need s3:AbortMultipartUpload; left behind: the multipart upload of s3:\/\/bkt\/\S+_multipart$/,
    );
    assert.equal(store.uploads.size, 1);
  });

  test('a part and its abort both denied: both actions named, the upload reported as left', async () => {
    const store = denying('part', 'abort');
    await assert.rejects(backupPreflight(store, HOOK, FOLDER, REPORT), (err: Error) => {
      assert.match(err.message, /cannot upload parts .*s3:PutObject \(multipart upload\); /);
      assert.match(err.message, /the multipart upload of s3:\/\/bkt\/\S+_multipart could not be aborted: AccessDenied \(HTTP 403\): the credentials need s3:AbortMultipartUpload/);
      return true;
    });
    assert.equal(store.uploads.size, 1);
  });

  test('a missing bucket is said to be missing', async () => {
    const store = new MemoryStore('nobkt');
    store.fault = () => {
      throw new StoreRequestError('uploading s3://nobkt/x: NoSuchBucket: The specified bucket does not exist (HTTP 404)', 404, 'NoSuchBucket');
    };
    await rejectsWith(
      backupPreflight(store, HOOK, FOLDER, REPORT),
      /^setup_plugin_for_backup: cannot write objects under s3:\/\/nobkt\/cluster1\/prod\/: bucket "nobkt" does not exist$/,
    );
  });

  test('a 403 that is not AccessDenied keeps its own message and claims no missing permission', async () => {
    const store = new MemoryStore('bkt');
    store.fault = () => {
      throw new StoreRequestError('uploading s3://bkt/x: SignatureDoesNotMatch: bad signature (HTTP 403)', 403, 'SignatureDoesNotMatch');
    };
    await assert.rejects(backupPreflight(store, HOOK, FOLDER, REPORT), (err: Error) => {
      assert.match(err.message, /cannot write objects under s3:\/\/bkt\/cluster1\/prod\/: uploading s3:\/\/bkt\/x: SignatureDoesNotMatch/);
      assert.doesNotMatch(err.message, /credentials need/);
      return true;
    });
  });

  test('a report object that reads back with a size other than zero fails the read step', async () => {
    const store = new MemoryStore('bkt');
    store.fault = (op, key) => {
      if (op === 'head') store.objects.set(key, Buffer.from('x'));
    };
    await rejectsWith(backupPreflight(store, HOOK, FOLDER, REPORT), /cannot read objects under .*reads back as 1 bytes, written empty/);
  });
});

describe('segment host check before a backup', () => {
  test('one put of the empty report object, no delete', async () => {
    const store = new MemoryStore('bkt');
    await backupWriteCheck(store, HOOK, FOLDER, REPORT);
    assert.deepEqual(store.calls.map(c => c.op), ['put']);
    assert.deepEqual([...store.objects.keys()], [REPORT]);
  });

  test('a denied put fails naming s3:PutObject', async () => {
    await rejectsWith(backupWriteCheck(denying('put'), HOOK, FOLDER, REPORT), /cannot write objects under s3:\/\/bkt\/cluster1\/prod\/: AccessDenied \(HTTP 403\): the credentials need s3:PutObject$/);
  });
});

describe('check before a restore', () => {
  const RHOOK = 'setup_plugin_for_restore';

  test('an empty folder: one listing', async () => {
    const store = new MemoryStore('bkt');
    await restoreCheck(store, RHOOK, FOLDER);
    assert.deepEqual(store.calls, [{ op: 'list', key: `${FOLDER}/`, detail: undefined }]);
  });

  test('a folder with objects: a listing and one byte of the first object', async () => {
    const store = new MemoryStore('bkt');
    store.objects.set(`${FOLDER}/a`, Buffer.from('abc'));
    store.objects.set(`${FOLDER}/b`, Buffer.from('def'));
    store.objects.set('cluster1/other', Buffer.from('x'));
    await restoreCheck(store, RHOOK, FOLDER);
    assert.deepEqual(store.calls.map(c => [c.op, c.key, c.detail]), [
      ['list', `${FOLDER}/`, undefined],
      ['get', `${FOLDER}/a`, '0-1'],
    ]);
  });

  test('denied list names s3:ListBucket; denied get names s3:GetObject', async () => {
    for (const [op, action] of [['list', 's3:ListBucket'], ['get', 's3:GetObject']] as const) {
      const store = denying(op);
      store.objects.set(`${FOLDER}/a`, Buffer.from('abc'));
      await rejectsWith(
        restoreCheck(store, RHOOK, FOLDER),
        new RegExp(`^setup_plugin_for_restore: cannot (list|read) objects under s3://bkt/cluster1/prod/: AccessDenied \\(HTTP 403\\): the credentials need ${action}$`),
      );
    }
  });

  test('an object deleted between the listing and the read is no failure', async () => {
    const store = new MemoryStore('bkt');
    store.objects.set(`${FOLDER}/a`, Buffer.from('abc'));
    store.fault = (op, key) => {
      if (op === 'get') store.objects.delete(key);
    };
    await restoreCheck(store, RHOOK, FOLDER);
  });
});

test('an AccessDenied that says more than "Access Denied" (a KMS key policy) keeps the server\'s words', async () => {
  const store = new MemoryStore('bkt');
  store.fault = op => {
    if (op === 'put') {
      throw new StoreRequestError(
        'uploading x: AccessDenied: User: arn:aws:iam::1:user/gp is not authorized to perform: kms:GenerateDataKey (HTTP 403)',
        403,
        'AccessDenied',
      );
    }
  };
  await rejectsWith(
    backupPreflight(store, HOOK, FOLDER, REPORT),
    /the credentials need s3:PutObject \(the server says: User: arn:aws:iam::1:user\/gp is not authorized to perform: kms:GenerateDataKey\)$/,
  );
});
