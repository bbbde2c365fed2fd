/** The setup hooks' checks against the in-memory store: requests made, messages, and what a failure leaves behind. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { backupPreflight, backupWriteCheck, probeKey, restoreCheck } from '../../src/protocol/hooks.js';
import { StoreRequestError } from '../../src/storage/store.js';
import { MemoryStore, type Op } from '../support/memory-store.js';

// The segment host's warning goes to ~/gpAdminLogs: keep it out of the real HOME.
const home = mkdtempSync(join(tmpdir(), 'gpb-s3-hooks-'));
process.env.HOME = home;
after(() => rmSync(home, { recursive: true, force: true }));

const HOOK = 'setup_plugin_for_backup';
const FOLDER = 'cluster1/prod';
const PROBE = `${FOLDER}/backups/20240102/20240102030405/.gpbackup_s3_plugin_probe_1_2`;

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

describe('probeKey', () => {
  test('in the backup directory when the local dir names one, else at the folder; unique per process', () => {
    const k = probeKey(FOLDER, '/data/coordinator/backups/20240102/20240102030405');
    assert.match(k, new RegExp(`^${FOLDER}/backups/20240102/20240102030405/\\.gpbackup_s3_plugin_probe_${process.pid}_\\d+$`));
    assert.match(probeKey(FOLDER, '/data/coordinator/backups/20240102/20240102030405/'), /\/20240102030405\/\.gpbackup/);
    assert.match(probeKey(FOLDER, '/tmp/elsewhere'), new RegExp(`^${FOLDER}/\\.gpbackup_s3_plugin_probe_${process.pid}_\\d+$`));
  });
});

describe('coordinator preflight before a backup', () => {
  test('writes, reads, multipart-uploads, lists and deletes, in eight requests, leaving nothing', async () => {
    const store = new MemoryStore('bkt');
    await backupPreflight(store, HOOK, FOLDER, PROBE);
    assert.deepEqual(
      store.calls.map(c => c.op),
      ['put', 'get', 'create', 'part', 'complete', 'get', 'list', 'delete'],
    );
    assert.deepEqual(store.calls.find(c => c.op === 'list')?.key, PROBE);
    assert.ok(store.calls.every(c => c.key.startsWith(PROBE)), 'every request is about the probe');
    assert.equal(store.objects.size, 0);
    assert.equal(store.uploads.size, 0);
  });

  const denials: Array<{ op: Op; action: RegExp; doing: RegExp }> = [
    { op: 'put', action: /the credentials need s3:PutObject$/, doing: /cannot write objects/ },
    { op: 'get', action: /the credentials need s3:GetObject$/, doing: /cannot read objects/ },
    { op: 'list', action: /the credentials need s3:ListBucket$/, doing: /cannot list objects/ },
    { op: 'create', action: /the credentials need s3:PutObject \(multipart upload\)$/, doing: /cannot start multipart uploads/ },
    { op: 'part', action: /the credentials need s3:PutObject \(multipart upload\)$/, doing: /cannot upload parts/ },
    { op: 'complete', action: /the credentials need s3:PutObject \(multipart upload\)$/, doing: /cannot complete multipart uploads/ },
  ];
  for (const { op, action, doing } of denials) {
    test(`denied ${op}: names the IAM action, aborts the upload and deletes the probe`, async () => {
      const store = denying(op);
      await assert.rejects(backupPreflight(store, HOOK, FOLDER, PROBE), (err: Error) => {
        assert.match(err.message, doing);
        assert.match(err.message, action);
        assert.match(err.message, /^setup_plugin_for_backup: cannot .* under s3:\/\/bkt\/cluster1\/prod\/: AccessDenied \(HTTP 403\): /);
        return true;
      });
      assert.equal(store.objects.size, 0);
      assert.equal(store.uploads.size, 0);
      // An upload that was started is aborted; none is aborted that was not.
      assert.equal(store.count('abort'), op === 'part' || op === 'complete' ? 1 : 0);
    });
  }

  test('denied delete: names s3:DeleteObject and the probe objects left behind', async () => {
    const store = denying('delete');
    await rejectsWith(
      backupPreflight(store, HOOK, FOLDER, PROBE),
      new RegExp(
        `^setup_plugin_for_backup: cannot delete objects under s3://bkt/cluster1/prod/: AccessDenied \\(HTTP 403\\): the credentials need s3:DeleteObject; ` +
          `left behind: s3://bkt/${PROBE}, s3://bkt/${PROBE}_multipart$`,
      ),
    );
    assert.deepEqual([...store.objects.keys()].sort(), [PROBE, `${PROBE}_multipart`]);
  });

  test('keys refused one by one in the DeleteObjects answer count as a denied delete too', async () => {
    const store = new MemoryStore('bkt');
    store.fault = (op, key, detail) => {
      // detail is undefined on the per-key call, set on the request itself
      if (op === 'delete' && detail === undefined && key.endsWith('_multipart')) throw new Error('AccessDenied: Access Denied');
    };
    await rejectsWith(
      backupPreflight(store, HOOK, FOLDER, PROBE),
      new RegExp(`AccessDenied: the credentials need s3:DeleteObject; left behind: s3://bkt/${PROBE}_multipart$`),
    );
    assert.deepEqual([...store.objects.keys()], [`${PROBE}_multipart`]);
  });

  test('a part and its abort both denied: both actions named, the upload reported as left', async () => {
    const store = denying('part', 'abort');
    await assert.rejects(backupPreflight(store, HOOK, FOLDER, PROBE), (err: Error) => {
      assert.match(err.message, /cannot upload parts .*s3:PutObject \(multipart upload\); /);
      assert.match(err.message, new RegExp(`the multipart upload of s3://bkt/${PROBE}_multipart could not be aborted: AccessDenied \\(HTTP 403\\): the credentials need s3:AbortMultipartUpload`));
      return true;
    });
    assert.equal(store.uploads.size, 1);
    assert.equal(store.objects.size, 0, 'the single-PUT probe is still deleted');
  });

  test('a failure after which the cleanup delete is refused too: the keys left behind are named', async () => {
    const store = denying('list', 'delete');
    await rejectsWith(
      backupPreflight(store, HOOK, FOLDER, PROBE),
      new RegExp(`s3:ListBucket; left behind: s3://bkt/${PROBE}, s3://bkt/${PROBE}_multipart \\(deleting them failed: AccessDenied \\(HTTP 403\\): the credentials need s3:DeleteObject\\)$`),
    );
  });

  test('a missing bucket is said to be missing', async () => {
    const store = new MemoryStore('nobkt');
    store.fault = () => {
      throw new StoreRequestError('uploading s3://nobkt/x: NoSuchBucket: The specified bucket does not exist (HTTP 404)', 404, 'NoSuchBucket');
    };
    await rejectsWith(
      backupPreflight(store, HOOK, FOLDER, PROBE),
      /^setup_plugin_for_backup: cannot write objects under s3:\/\/nobkt\/cluster1\/prod\/: bucket "nobkt" does not exist$/,
    );
  });

  test('a 403 that is not AccessDenied keeps its own message and claims no missing permission', async () => {
    const store = new MemoryStore('bkt');
    store.fault = () => {
      throw new StoreRequestError('uploading s3://bkt/x: SignatureDoesNotMatch: bad signature (HTTP 403)', 403, 'SignatureDoesNotMatch');
    };
    await assert.rejects(backupPreflight(store, HOOK, FOLDER, PROBE), (err: Error) => {
      assert.match(err.message, /cannot write objects under s3:\/\/bkt\/cluster1\/prod\/: uploading s3:\/\/bkt\/x: SignatureDoesNotMatch/);
      assert.doesNotMatch(err.message, /credentials need/);
      return true;
    });
  });

  test('bytes that read back different fail the read step', async () => {
    const store = new MemoryStore('bkt');
    store.fault = (op, key) => {
      if (op === 'get') store.objects.get(key)![0] ^= 0xff;
    };
    await rejectsWith(backupPreflight(store, HOOK, FOLDER, PROBE), /cannot read objects under .*read back as \d+ bytes that differ/);
    assert.equal(store.objects.size, 0);
  });
});

describe('segment host check before a backup', () => {
  test('one put and one delete', async () => {
    const store = new MemoryStore('bkt');
    await backupWriteCheck(store, HOOK, FOLDER, PROBE);
    assert.deepEqual(store.calls.map(c => c.op), ['put', 'delete']);
    assert.equal(store.objects.size, 0);
  });

  test('a denied put fails naming s3:PutObject; a denied delete is only a warning in the log', async () => {
    await rejectsWith(backupWriteCheck(denying('put'), HOOK, FOLDER, PROBE), /cannot write objects under s3:\/\/bkt\/cluster1\/prod\/: AccessDenied \(HTTP 403\): the credentials need s3:PutObject$/);
    const store = denying('delete');
    await backupWriteCheck(store, HOOK, FOLDER, PROBE);
    assert.deepEqual([...store.objects.keys()], [PROBE]);
    const logs = readdirSync(join(home, 'gpAdminLogs')).map(f => readFileSync(join(home, 'gpAdminLogs', f), 'utf8')).join('');
    assert.match(logs, new RegExp(`\\[WARNING\\]:-setup_plugin_for_backup: could not delete probe object s3://bkt/${PROBE}: .*s3:DeleteObject`));
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
    backupPreflight(store, HOOK, FOLDER, PROBE),
    /the credentials need s3:PutObject \(the server says: User: arn:aws:iam::1:user\/gp is not authorized to perform: kms:GenerateDataKey\)$/,
  );
});
