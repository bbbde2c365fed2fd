import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { loadConfig, parseConfigText } from '../../src/config/load.js';
import type { PluginConfig } from '../../src/config/types.js';
import { Logger } from '../../src/log/gplog.js';
import { ConfigError } from '../../src/config/errors.js';
import { PluginError } from '../../src/errors.js';

const PATH = '/tmp/20240101010101_s3.yaml';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const schema = JSON.parse(readFileSync(new URL('../../schemas/plugin-config.schema.json', import.meta.url), 'utf8'));

/** Files for ca_bundle: a PEM bundle, and things that are not one. */
const FILES = mkdtempSync(join(tmpdir(), 'config-test-files-'));
after(() => rmSync(FILES, { recursive: true, force: true }));
const CA_PEM = join(FILES, 'ca.pem');
writeFileSync(CA_PEM, '# private CA\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUexample\n-----END CERTIFICATE-----\n');

const parse = (text: string): PluginConfig => parseConfigText(text, PATH);

/** A config file: `options` values written exactly as given (so quoting is up to the test). */
function yaml(options: Record<string, string>, top = 'executablepath: /usr/local/gpdb/bin/gpbackup_s3_plugin'): string {
  return `${top}\noptions:\n${Object.entries(options).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`;
}
const BASE = { region: 'us-east-1', bucket: 'my-bucket', folder: 'backups/prod' };

/** The problems of a config that must fail. */
function problems(text: string): string[] {
  let caught: unknown;
  try {
    parse(text);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.equal(caught.configPath, PATH);
  assert.ok(caught.message.startsWith(`invalid plugin config ${PATH}: `));
  return caught.problems;
}

test("reads gpbackup's re-written copy: sorted keys, every value a quoted string, injected keys", () => {
  const text = [
    'executablepath: /usr/local/gpdb/bin/gpbackup_s3_plugin',
    'options:',
    '  aws_access_key_id: "AKIAEXAMPLE"',
    '  aws_secret_access_key: "c2VjcmV0/+key"',
    '  backup_max_bandwidth: "100MB/s"',
    '  backup_max_concurrent_requests: "6"',
    '  backup_multipart_chunksize: "500MB"',
    '  backup_plugin_version: ""',
    '  bucket: "my-bucket"',
    `  ca_bundle: "${CA_PEM}"`,
    '  checksums: "md5"',
    '  connect_timeout: "500ms"',
    '  encryption: "on"',
    '  endpoint: "https://minio.example.com:9000/"',
    '  folder: "backups/prod/"',
    '  force_path_style: "off"',
    '  http_proxy: "http://proxy.example.com:3128"',
    '  logger_verbosity: "verbose"',
    '  low_speed_limit: "10KB/s"',
    '  low_speed_time: "30s"',
    '  max_retries: "8"',
    '  pgport: "5432"',
    '  region: "us-east-1"',
    '  remove_duplicate_bucket: "false"',
    '  request_timeout: "2m"',
    '  restore_max_bandwidth: "1.5GB/s"',
    '  restore_max_concurrent_requests: "8"',
    '  restore_multipart_chunksize: "10MB"',
    '  restore_subset: "on"',
    '  role_arn: "arn:aws:iam::123456789012:role/gpbackup"',
    '  server_side_encryption: "aws:kms"',
    '  sse_kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"',
    '  storage_class: "STANDARD_IA"',
    '',
  ].join('\n');
  const expected: PluginConfig = {
    configPath: PATH,
    executablePath: '/usr/local/gpdb/bin/gpbackup_s3_plugin',
    bucket: 'my-bucket',
    folder: 'backups/prod',
    region: 'us-east-1',
    endpoint: 'https://minio.example.com:9000/',
    accessKeyId: 'AKIAEXAMPLE',
    secretAccessKey: 'c2VjcmV0/+key',
    useTls: true,
    httpProxy: 'http://proxy.example.com:3128',
    backupPartSize: 500 * MiB,
    backupConcurrency: 6,
    restorePartSize: 10 * MiB,
    restoreConcurrency: 8,
    removeDuplicateBucket: false,
    loggerVerbosity: 'verbose',
    restoreSubset: true,
    maxRetries: 8,
    connectTimeoutMs: 500,
    requestTimeoutMs: 120_000,
    lowSpeedLimit: 10 * 1024,
    lowSpeedTimeMs: 30_000,
    caBundle: CA_PEM,
    serverSideEncryption: 'aws:kms',
    sseKmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    storageClass: 'STANDARD_IA',
    forcePathStyle: false,
    checksums: 'md5',
    backupMaxBandwidth: 100 * MiB,
    restoreMaxBandwidth: 1.5 * GiB,
    roleArn: 'arn:aws:iam::123456789012:role/gpbackup',
    clientSideEncryption: false,
    deduplication: false,
    encryptionOldKeyFiles: [],
    decryptionKeys: [],
    pgport: '5432',
    backupPluginVersion: '',
    warnings: [],
  };
  assert.deepEqual(parse(text), expected);
});

test('unquoted values mean the text they show (no YAML 1.1 booleans or octal numbers)', () => {
  const config = parse(
    yaml({
      endpoint: 'localhost:9000',
      bucket: 'my-bucket',
      folder: '0123',
      encryption: 'off',
      backup_max_concurrent_requests: '6',
      restore_max_concurrent_requests: '010',
      backup_multipart_chunksize: '5 MB',
      restore_subset: 'on',
      remove_duplicate_bucket: 'true',
      logger_verbosity: 'debug',
      pgport: '6000',
      backup_plugin_version: '1.10.1',
      max_retries: '0',
      connect_timeout: '30',
      force_path_style: 'off',
      restore_max_bandwidth: '0',
      aws_profile: '0123',
    }),
  );
  assert.equal(config.folder, '0123');
  assert.equal(config.useTls, false);
  assert.equal(config.backupConcurrency, 6);
  assert.equal(config.restoreConcurrency, 10);
  assert.equal(config.backupPartSize, 5 * MiB);
  assert.equal(config.restoreSubset, true);
  assert.equal(config.removeDuplicateBucket, true);
  assert.equal(config.loggerVerbosity, 'debug');
  assert.equal(config.pgport, '6000');
  assert.equal(config.backupPluginVersion, '1.10.1');
  assert.equal(config.region, undefined);
  assert.equal(config.maxRetries, 0);
  assert.equal(config.connectTimeoutMs, 30_000);
  assert.equal(config.forcePathStyle, false);
  assert.equal(config.restoreMaxBandwidth, 0);
  assert.equal(config.awsProfile, '0123');
});

test('Windows line ends and a byte-order mark are fine, and lines still count', () => {
  const text = `\uFEFF${yaml({ ...BASE, restore_subset: 'x' }).replace(/\n/g, '\r\n')}`;
  assert.deepEqual(problems(text), ['option "restore_subset" (line 6): must be on or off (lowercase), got "x"']);
  assert.equal(parse(`\uFEFF${yaml(BASE).replace(/\n/g, '\r\n')}`).folder, 'backups/prod');
});

test('defaults: small parts and few requests, taken from the schema', () => {
  const config = parse(yaml(BASE));
  assert.deepEqual(config, {
    configPath: PATH,
    executablePath: '/usr/local/gpdb/bin/gpbackup_s3_plugin',
    bucket: 'my-bucket',
    folder: 'backups/prod',
    region: 'us-east-1',
    useTls: true,
    backupPartSize: 16 * MiB,
    backupConcurrency: 4,
    restorePartSize: 8 * MiB,
    restoreConcurrency: 6,
    removeDuplicateBucket: false,
    loggerVerbosity: 'info',
    restoreSubset: false,
    maxRetries: 5,
    connectTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
    lowSpeedLimit: 1024,
    lowSpeedTimeMs: 60_000,
    forcePathStyle: true,
    checksums: 'auto',
    backupMaxBandwidth: 0,
    restoreMaxBandwidth: 0,
    clientSideEncryption: false,
    deduplication: false,
    encryptionOldKeyFiles: [],
    decryptionKeys: [],
    warnings: [],
  });
  const props = schema.properties.options.properties;
  assert.equal(props.backup_multipart_chunksize.default, '16MiB');
  assert.equal(props.backup_max_concurrent_requests.default, '4');
  assert.equal(props.restore_multipart_chunksize.default, '8MiB');
  assert.equal(props.restore_max_concurrent_requests.default, '6');
  assert.equal(props.encryption.default, 'on');
  assert.equal(props.max_retries.default, '5');
  assert.equal(props.connect_timeout.default, '10s');
  assert.equal(props.request_timeout.default, '60s');
  assert.equal(props.force_path_style.default, 'on');
  assert.equal(props.checksums.default, 'auto');
  assert.equal(props.backup_max_bandwidth.default, '0');
  assert.equal(props.restore_max_bandwidth.default, '0');
  for (const name of ['ca_bundle', 'server_side_encryption', 'sse_kms_key_id', 'storage_class', 'aws_profile', 'role_arn']) {
    assert.equal(props[name].default, undefined, name);
  }
});

test('an option left empty takes its default, as in the Go plugin', () => {
  const empty = ['encryption', 'backup_multipart_chunksize', 'backup_max_concurrent_requests', 'restore_multipart_chunksize',
    'restore_max_concurrent_requests', 'remove_duplicate_bucket', 'logger_verbosity', 'restore_subset', 'http_proxy',
    'aws_access_key_id', 'aws_secret_access_key', 'aws_session_token', 'endpoint', 'max_retries', 'connect_timeout',
    'request_timeout', 'ca_bundle', 'server_side_encryption', 'sse_kms_key_id', 'storage_class', 'force_path_style',
    'backup_max_bandwidth', 'restore_max_bandwidth', 'aws_profile', 'role_arn', 'checksums'];
  const bare = parse(yaml({ ...BASE, ...Object.fromEntries(empty.map(k => [k, ''])) }));
  const quoted = parse(yaml({ ...BASE, ...Object.fromEntries(empty.map(k => [k, '""'])) }));
  assert.deepEqual(bare, parse(yaml(BASE)));
  assert.deepEqual(quoted, parse(yaml(BASE)));
});

test('endpoint only (region unset or empty), kept exactly as written', () => {
  for (const endpoint of ['http://localhost:9000/', 'https://s3.example.com', 'minio:9000', '10.0.0.1:9000',
    '[::1]:9000', 's3.example.com/prefix', 'minio_1']) {
    const config = parse(yaml({ region: '""', endpoint: JSON.stringify(endpoint), bucket: 'b-1', folder: 'f' }));
    assert.equal(config.endpoint, endpoint);
    assert.equal(config.region, undefined);
  }
});

test('bucket names: lenient for S3-compatibles, but no scheme or path', () => {
  for (const bucket of ['abc', 'My_Bucket.01', 'a'.repeat(255), '123']) assert.equal(parse(yaml({ ...BASE, bucket })).bucket, bucket);
  for (const bucket of ['ab', 's3://my-bucket', 'my-bucket/backups', 'my bucket', 'a'.repeat(256)]) {
    const p = problems(yaml({ ...BASE, bucket: JSON.stringify(bucket) }));
    assert.equal(p.length, 1, bucket);
    assert.match(p[0]!, /^option "bucket" \(line 4\): must be a bucket name/);
  }
});

test('concurrency: a whole number 1 to 256; leading zeros, a plus sign and spaces are fine', () => {
  const cases: [string, number][] = [['1', 1], ['64', 64], ['65', 65], ['100', 100], ['199', 199], ['256', 256], ['06', 6], ['+8', 8], ['" 7 "', 7], ['0064', 64]];
  for (const [text, n] of cases) assert.equal(parse(yaml({ ...BASE, backup_max_concurrent_requests: text })).backupConcurrency, n, text);
});

test('restore piece sizes: 1 MiB to 5 GiB (ranged GETs have no 5 MB minimum)', () => {
  const ok: [string, number][] = [['1MB', MiB], ['1048576', MiB], ['4MB', 4 * MiB], ['5MB', 5 * MiB], ['5GB', 5 * GiB], ['1.5GB', 1.5 * GiB]];
  for (const [text, bytes] of ok) assert.equal(parse(yaml({ ...BASE, restore_multipart_chunksize: text })).restorePartSize, bytes, text);
  for (const text of ['1048575', '1023KB', '0.99MB', '5.001GB', '0']) {
    assert.deepEqual(problems(yaml({ ...BASE, restore_multipart_chunksize: JSON.stringify(text) })), [
      `option "restore_multipart_chunksize" (line 6): must be from 1MiB to 5GiB (smaller pieces cost more in requests than they save in memory), got ${JSON.stringify(text)}`,
    ]);
  }
});

test('upload part sizes: 5 MiB to 5 GiB', () => {
  const ok: [string, number][] = [['5MB', 5 * MiB], ['5242880', 5 * MiB], ['5GB', 5 * GiB], ['5GiB', 5 * GiB], ['1.5GB', 1.5 * GiB]];
  for (const [text, bytes] of ok) assert.equal(parse(yaml({ ...BASE, backup_multipart_chunksize: text })).backupPartSize, bytes, text);
  for (const text of ['5242879', '5119KB', '4.99MB', '5.001GB', '1TB', '0']) {
    assert.deepEqual(problems(yaml({ ...BASE, backup_multipart_chunksize: JSON.stringify(text) })), [
      `option "backup_multipart_chunksize" (line 6): must be from 5MiB to 5GiB (S3's part size limits), got ${JSON.stringify(text)}`,
    ]);
  }
});

test('every invalid option value is reported, naming the option and its line', () => {
  // Values as YAML text: q() quotes a string, lists and mappings are written as they are.
  const q = JSON.stringify;
  const cases: [string, string, RegExp][] = [
    ['region', q('us east 1'), /must be a region name/],
    ['endpoint', q('ftp://minio:9000'), /must be host\[:port\]\[\/path\] or an http:\/\/ or https:\/\/ URL/],
    ['endpoint', q('http://'), /must be host/],
    ['endpoint', q('minio 9000'), /must be host/],
    ['http_proxy', q('proxy:3128'), /must be an http:\/\/ or https:\/\/ URL/],
    ['http_proxy', q('socks5://proxy:1080'), /must be an http:\/\/ or https:\/\/ URL/],
    ['backup_multipart_chunksize', q('100M'), /must be a size such as 16MB/],
    ['backup_multipart_chunksize', q('-5MB'), /must be a size/],
    ['restore_multipart_chunksize', q('5 XB'), /must be a size/],
    ['restore_multipart_chunksize', q('abc'), /must be a size/],
    ['backup_max_concurrent_requests', q('abc'), /must be a whole number from 1 to 256 \(each request holds a connection and a part-sized buffer\), got "abc"/],
    ['backup_max_concurrent_requests', q('0'), /must be a whole number from 1 to 256/],
    ['backup_max_concurrent_requests', q('257'), /must be a whole number from 1 to 256/],
    ['backup_max_concurrent_requests', q('1000'), /must be a whole number from 1 to 256/],
    ['restore_max_concurrent_requests', q('-1'), /must be a whole number from 1 to 256/],
    ['restore_max_concurrent_requests', q('1.5'), /must be a whole number from 1 to 256/],
    ['restore_max_concurrent_requests', q('260'), /must be a whole number from 1 to 256/],
    ['remove_duplicate_bucket', q('yes'), /must be true or false/],
    ['remove_duplicate_bucket', q('True'), /must be true or false/],
    ['logger_verbosity', q('warning'), /must be error, info, verbose or debug/],
    ['logger_verbosity', q('DEBUG'), /must be error, info, verbose or debug/],
    ['restore_subset', q('true'), /must be on or off/],
    ['pgport', q('abc'), /must be a port number/],
    ['max_retries', q('21'), /must be a whole number from 0 to 20, got "21"$/],
    ['max_retries', q('-1'), /must be a whole number from 0 to 20/],
    ['max_retries', q('1.5'), /must be a whole number from 0 to 20/],
    ['max_retries', q('five'), /must be a whole number from 0 to 20/],
    ['connect_timeout', q('10 sec'), /must be a duration: a number and a unit ms, s or m, such as 500ms, 10s, 1.5s or 2m \(a bare number is seconds\), got "10 sec"$/],
    ['connect_timeout', q('1h'), /must be a duration/],
    ['request_timeout', q('-5s'), /must be a duration/],
    ['request_timeout', q('1m30s'), /must be a duration/],
    ['ca_bundle', q('certs/ca.pem'), /must be the absolute path of a PEM file of CA certificates, such as \/etc\/pki\/tls\/certs\/ca-bundle.crt, got "certs\/ca.pem"$/],
    ['ca_bundle', q('~/ca.pem'), /must be the absolute path of a PEM file/],
    ['server_side_encryption', q('aes256'), /must be AES256 or aws:kms, written exactly so, got "aes256"$/],
    ['server_side_encryption', q('AWS:KMS'), /must be AES256 or aws:kms/],
    ['server_side_encryption', q('kms'), /must be AES256 or aws:kms/],
    ['checksums', q('CRC32'), /must be auto, crc32, md5 or off \(lowercase\), got "CRC32"$/],
    ['checksums', q('sha256'), /must be auto, crc32, md5 or off/],
    ['server_side_encryption', q('on'), /must be AES256 or aws:kms/],
    ['storage_class', q('standard_ia'), /must be a storage class name of uppercase letters, digits and underscores, such as STANDARD_IA or GLACIER_IR, got "standard_ia"$/],
    ['storage_class', q('STANDARD-IA'), /must be a storage class name/],
    ['storage_class', q('GLACIER IR'), /must be a storage class name/],
    ['storage_class', q('1ZONE'), /must be a storage class name/],
    ['storage_class', q('_COLD'), /must be a storage class name/],
    ['force_path_style', q('true'), /must be on or off \(lowercase\), got "true"$/],
    ['force_path_style', q('OFF'), /must be on or off/],
    ['backup_max_bandwidth', q('100MB/h'), /must be a size a second such as 100MB\/s or 1.5GB\/s \(units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB\), or 0 for unlimited, got "100MB\/h"$/],
    ['backup_max_bandwidth', q('100 MBps'), /must be a size a second/],
    ['restore_max_bandwidth', q('unlimited'), /must be a size a second/],
    ['restore_max_bandwidth', q('-1'), /must be a size a second/],
    ['restore_max_bandwidth', q('100M/s'), /must be a size a second/],
    ['aws_profile', q('my profile'), /must be a profile name: letters, digits and _ \. \+ @ -, got "my profile"$/],
    ['aws_profile', q('profile/prod'), /must be a profile name/],
    ['aws_profile', q('[prod]'), /must be a profile name/],
    ['role_arn', q('arn:aws:iam::12345678901:role/gpbackup'), /must be an IAM role ARN such as arn:aws:iam::123456789012:role\/gpbackup, got "arn:aws:iam::12345678901:role\/gpbackup"$/],
    ['role_arn', q('arn:aws:iam::123456789012:user/gpbackup'), /must be an IAM role ARN/],
    ['role_arn', q('arn:aws:iam::123456789012:role/'), /must be an IAM role ARN/],
    ['role_arn', q('arn:aws:sts::123456789012:assumed-role/gpbackup/s'), /must be an IAM role ARN/],
    ['role_arn', q('gpbackup'), /must be an IAM role ARN/],
    ['role_arn', q('ARN:AWS:IAM::123456789012:role/gpbackup'), /must be an IAM role ARN/],
    ['folder', '[a, b]', /must be a single value, not a list or a mapping/],
    ['bucket', '{a: b}', /must be a single value, not a list or a mapping/],
    ['backup_plugin_version', '[1]', /must be a single value/],
  ];
  for (const [option, value, message] of cases) {
    const p = problems(yaml({ ...BASE, [option]: value }));
    assert.equal(p.length, 1, `${option}: ${value}: ${p.join(' | ')}`);
    const line = Object.keys({ ...BASE, [option]: '' }).indexOf(option) + 3;
    assert.ok(p[0]!.startsWith(`option "${option}" (line ${line}): `), p[0]);
    assert.match(p[0]!, message);
  }
});

test('several problems are reported together, in file order', () => {
  const p = problems(
    [
      'executablepath: /x',
      'options:',
      '  bucket: "s3://b"',
      '  restore_subset: yes',
      '  backup_max_concurrent_requests: abc',
      '  restore_multipart_chunksize: 1000KB',
      '  folder: ""',
      '',
    ].join('\n'),
  );
  assert.deepEqual(p, [
    'region or endpoint must be set',
    'option "bucket" (line 3): must be a bucket name: 3 to 255 letters, digits, dots, hyphens or underscores, without s3:// or a path (put the path in folder), got "s3://b"',
    'option "restore_subset" (line 4): must be on or off (lowercase), got "yes"',
    'option "backup_max_concurrent_requests" (line 5): must be a whole number from 1 to 256 (each request holds a connection and a part-sized buffer), got "abc"',
    'option "restore_multipart_chunksize" (line 6): must be from 1MiB to 5GiB (smaller pieces cost more in requests than they save in memory), got "1000KB"',
    'option "folder" (line 7): is required and cannot be empty',
  ]);
});

test('duplicate keys are reported with their lines, along with the other problems', () => {
  const p = problems(
    [
      'executablepath: /x',
      'options:',
      '  bucket: my-bucket',
      '  folder: f',
      '  region: us-east-1',
      '  bucket: other',
      '  restore_subset: maybe',
      'executablepath: /y',
      '',
    ].join('\n'),
  );
  assert.deepEqual(p, [
    'option "bucket" (line 6): appears more than once',
    'option "restore_subset" (line 7): must be on or off (lowercase), got "maybe"',
    'key "executablepath" (line 8): appears more than once',
  ]);
  // Flow style: no line scan, the YAML parser's position is used.
  assert.deepEqual(problems('{executablepath: /x, executablepath: /y, options: {bucket: abc, folder: f, region: r}}'), [
    'a key appears more than once (line 1)',
  ]);
});

test('unknown keys, at the top level and in options, with a hint for near misses', () => {
  const p = problems(
    [
      'executablepath: /x',
      'bucket: my-bucket',
      'option: {}',
      'options:',
      '  bukcet: my-bucket',
      '  folder: f',
      '  region: us-east-1',
      '  backup_multipart_chunk_size: 16MB',
      '  executablepath: /y',
      '  storage_tier: GLACIER',
      '  max_retires: 3',
      'extra: 1',
      '',
    ].join('\n'),
  );
  assert.deepEqual(p, [
    'option "bucket" is required but missing',
    'unknown key "bucket" (line 2): only executablepath and options belong at the top level (it is an option: indent it under options:)',
    'unknown key "option" (line 3): only executablepath and options belong at the top level (did you mean "options"?)',
    'option "bukcet" (line 5): unknown option (did you mean "bucket"?)',
    'option "backup_multipart_chunk_size" (line 8): unknown option (did you mean "backup_multipart_chunksize"?)',
    'option "executablepath" (line 9): unknown option (it belongs at the top level, not under options:)',
    'option "storage_tier" (line 10): unknown option',
    'option "max_retires" (line 11): unknown option (did you mean "max_retries"?)',
    'unknown key "extra" (line 12): only executablepath and options belong at the top level',
  ]);
});

test('missing or empty required settings', () => {
  assert.deepEqual(problems('options:\n  region: r\n'), [
    'executablepath: must be set to the path of the plugin executable',
    'option "bucket" is required but missing',
    'option "folder" is required but missing',
  ]);
  assert.deepEqual(problems('executablepath:\noptions:\n  bucket: ""\n  folder:\n  region: ""\n  endpoint:\n'), [
    'region or endpoint must be set',
    'executablepath (line 1): must be set to the path of the plugin executable',
    'option "bucket" (line 3): is required and cannot be empty',
    'option "folder" (line 4): is required and cannot be empty',
  ]);
  assert.deepEqual(problems('executablepath: /x\n'), ['options is missing: it holds the plugin settings (bucket, folder, ...)']);
  assert.deepEqual(problems('executablepath: /x\noptions:\n'), [
    'region or endpoint must be set',
    'option "bucket" is required but missing',
    'option "folder" is required but missing',
  ]);
  assert.deepEqual(problems('executablepath: /x\noptions: everything\n'), ['options (line 2): must be a mapping of option names to values']);
  assert.deepEqual(problems('executablepath: [/x]\noptions: {bucket: abc, folder: f, region: r}\n'), [
    'executablepath (line 1): must be a single value, not a list or a mapping',
  ]);
});

test('access key pair: both or neither; a session token only with both', () => {
  assert.deepEqual(problems(yaml({ ...BASE, aws_access_key_id: 'AKIAEXAMPLE' })), [
    'aws_secret_access_key must be set when aws_access_key_id is (line 6)',
  ]);
  assert.deepEqual(problems(yaml({ ...BASE, aws_access_key_id: '""', aws_secret_access_key: 'secret' })), [
    'aws_access_key_id must be set when aws_secret_access_key is (line 7)',
  ]);
  assert.deepEqual(problems(yaml({ ...BASE, aws_session_token: 'token' })), [
    'aws_session_token can only be used with aws_access_key_id and aws_secret_access_key (line 6)',
  ]);
  const config = parse(yaml({ ...BASE, aws_access_key_id: 'AKIAEXAMPLE', aws_secret_access_key: 'secret', aws_session_token: 'token' }));
  assert.equal(config.accessKeyId, 'AKIAEXAMPLE');
  assert.equal(config.secretAccessKey, 'secret');
  assert.equal(config.sessionToken, 'token');
  const none = parse(yaml(BASE));
  assert.ok(!('accessKeyId' in none) && !('secretAccessKey' in none) && !('sessionToken' in none));
});

test('credential values never appear in a message', () => {
  const id = 'AKIA SECRETID ';
  const secret = ' wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  const token = 'FwoGZXIvYXdzEXAMPLETOKEN\nsecondline';
  const texts = [
    yaml({ ...BASE, aws_access_key_id: JSON.stringify(id), aws_secret_access_key: JSON.stringify(secret), aws_session_token: JSON.stringify(token) }),
    yaml({ ...BASE, aws_secret_access_key: JSON.stringify(secret), aws_session_token: JSON.stringify(token) }),
    yaml({ ...BASE, aws_access_key_id: `[${JSON.stringify(id)}]`, aws_secret_access_key: `{k: ${JSON.stringify(secret)}}` }),
    `${yaml({ ...BASE, aws_secret_access_key: JSON.stringify(secret) })}  aws_secret_access_key: ${JSON.stringify(secret)}\n`,
    `${yaml({ ...BASE, aws_secret_access_key: JSON.stringify(secret) })}  bad: [unclosed\n`,
    `executablepath: /x\noptions:\n  aws_secret_access_key: ${secret.trim()}: more\n`,
  ];
  const secrets = [id, secret, token, id.trim(), secret.trim(), 'EXAMPLETOKEN', 'EXAMPLEKEY', 'SECRETID'];
  for (const text of texts) {
    let message = '';
    try {
      parse(text);
    } catch (err) {
      message = err instanceof ConfigError ? `${err.message}\n${err.problems.join('\n')}` : String(err);
    }
    assert.notEqual(message, '', text);
    for (const s of secrets) assert.ok(!message.includes(s), `message shows a secret: ${message}`);
  }
  const p = problems(yaml({ ...BASE, aws_access_key_id: JSON.stringify(id), aws_secret_access_key: JSON.stringify(secret) }));
  assert.deepEqual(p, [
    'option "aws_access_key_id" (line 6): must not start or end with a space or contain a line break (value not shown)',
    'option "aws_secret_access_key" (line 7): must not start or end with a space or contain a line break (value not shown)',
  ]);
});

test('a proxy password is masked in messages', () => {
  const p = problems(yaml({ ...BASE, http_proxy: 'ftp://user:pa55word@proxy:21' }));
  assert.equal(p.length, 1);
  assert.ok(!p[0]!.includes('pa55word'), p[0]);
  assert.match(p[0]!, /got "ftp:\/\/\*\*\*@proxy:21"/);
});

test('not valid YAML: a ConfigError with the position, without quoting the text', () => {
  assert.deepEqual(problems('executablepath: /x\noptions:\n  bucket: [abc\n'), [
    'not valid YAML at line 4, column 1: unexpected end of the stream within a flow collection',
  ]);
  assert.match(problems('executablepath: /x\n  options: 1\n')[0]!, /^not valid YAML at line 2, column \d+: /);
  assert.match(problems('a: !!int 5\n')[0]!, /^not valid YAML at line 1/);
});

test('empty, non-mapping and over-large files are PluginErrors', () => {
  for (const text of ['', '   \n\n', '# just a comment\n', '---\n']) {
    assert.throws(() => parse(text), (err: unknown) => err instanceof PluginError && !(err instanceof ConfigError) &&
      err.message === `plugin config ${PATH} is empty`, JSON.stringify(text));
  }
  for (const text of ['- executablepath: /x\n', 'just some text\n', '"quoted"\n']) {
    assert.throws(() => parse(text), (err: unknown) => err instanceof PluginError &&
      err.message === `plugin config ${PATH} is not a YAML mapping: it must hold the keys executablepath and options`, text);
  }
  assert.throws(() => parse(`# ${'x'.repeat(1024 * 1024)}\n${yaml(BASE)}`), /is larger than 1 MiB/);
});

test('loadConfig reads a file, and says clearly when it cannot', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 's3.yaml');
  writeFileSync(file, yaml(BASE));
  assert.deepEqual(loadConfig(file), { ...parse(yaml(BASE)), configPath: file });

  const missing = join(dir, 'nope.yaml');
  assert.throws(() => loadConfig(missing), (err: unknown) => err instanceof PluginError &&
    err.message === `reading plugin config ${missing}: no such file`);
  assert.throws(() => loadConfig(dir), (err: unknown) => err instanceof PluginError &&
    err.message === `reading plugin config ${dir}: it is a directory`);
  assert.throws(() => loadConfig(join(file, 'x')), /: a part of the path is not a directory$/);

  const big = join(dir, 'big.yaml');
  writeFileSync(big, `# ${'x'.repeat(1024 * 1024)}\n${yaml(BASE)}`);
  assert.throws(() => loadConfig(big), (err: unknown) => err instanceof PluginError &&
    err.message === `plugin config ${big} is larger than 1 MiB: is it the right file?`);

  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '');
  assert.throws(() => loadConfig(empty), /is empty$/);
});

test('the schema is a valid draft-07 schema that editors can use on its own', () => {
  const ajv = new Ajv({ strict: true, strictTypes: false });
  ajv.addKeyword('errorMessage');
  assert.ok(ajv.validateSchema(schema), JSON.stringify(ajv.errors));
  ajv.compile(schema);
  assert.equal(JSON.stringify(schema).includes('"$ref"'), false);
  for (const [name, prop] of Object.entries<Record<string, unknown>>(schema.properties.options.properties)) {
    assert.equal(prop.type, 'string', name);
    assert.equal(typeof prop.description, 'string', name);
    assert.equal(typeof prop.errorMessage, 'string', name);
  }
});

test('max_retries: a whole number 0 to 20', () => {
  const cases: [string, number][] = [['0', 0], ['20', 20], ['05', 5], ['+3', 3], ['" 12 "', 12]];
  for (const [text, n] of cases) assert.equal(parse(yaml({ ...BASE, max_retries: text })).maxRetries, n, text);
});

test('timeouts: ms, s or m (a bare number is seconds); connect 100ms to 10m, request 1s to 60m', () => {
  const connect: [string, number][] = [['100ms', 100], ['500ms', 500], ['1.5s', 1500], ['10', 10_000], ['2m', 120_000], ['10m', 600_000],
    ['" 3 S "', 3000], ['0.1', 100]];
  for (const [text, ms] of connect) assert.equal(parse(yaml({ ...BASE, connect_timeout: text })).connectTimeoutMs, ms, text);
  const request: [string, number][] = [['1s', 1000], ['1000ms', 1000], ['90', 90_000], ['60m', 3_600_000], ['0.5m', 30_000]];
  for (const [text, ms] of request) assert.equal(parse(yaml({ ...BASE, request_timeout: text })).requestTimeoutMs, ms, text);

  for (const text of ['99ms', '0', '0.05', '10.5m', '601s']) {
    assert.deepEqual(problems(yaml({ ...BASE, connect_timeout: JSON.stringify(text) })), [
      `option "connect_timeout" (line 6): must be from 100ms to 10m, got ${JSON.stringify(text)}`,
    ]);
  }
  for (const text of ['999ms', '0.5', '61m', '3601']) {
    assert.deepEqual(problems(yaml({ ...BASE, request_timeout: JSON.stringify(text) })), [
      `option "request_timeout" (line 6): must be from 1s to 60m, got ${JSON.stringify(text)}`,
    ]);
  }
});

test('bandwidth: a size a second, the /s optional; 0 is unlimited, otherwise at least 64KiB/s', () => {
  const cases: [string, number][] = [['100MB', 100 * MiB], ['100MB/s', 100 * MiB], ['1.5GB/s', 1.5 * GiB], ['"100 MiB / s"', 100 * MiB],
    ['64KB/s', 64 * 1024], ['65536', 65536], ['0', 0], ['0/s', 0], ['"0 MB"', 0]];
  for (const [text, bytes] of cases) {
    const config = parse(yaml({ ...BASE, backup_max_bandwidth: text, restore_max_bandwidth: text }));
    assert.equal(config.backupMaxBandwidth, bytes, text);
    assert.equal(config.restoreMaxBandwidth, bytes, text);
  }
  for (const text of ['63KB/s', '65535', '1', '1 byte/s']) {
    assert.deepEqual(problems(yaml({ ...BASE, restore_max_bandwidth: JSON.stringify(text) })), [
      `option "restore_max_bandwidth" (line 6): must be 0 (unlimited) or at least 64KiB/s, got ${JSON.stringify(text)}`,
    ]);
  }
});

test('server_side_encryption, sse_kms_key_id, storage_class, force_path_style, aws_profile and role_arn as written', () => {
  const aes = parse(yaml({ ...BASE, server_side_encryption: 'AES256' }));
  assert.equal(aes.serverSideEncryption, 'AES256');
  assert.ok(!('sseKmsKeyId' in aes));
  const kms = parse(yaml({ ...BASE, server_side_encryption: 'aws:kms', sse_kms_key_id: 'alias/gpbackup' }));
  assert.deepEqual([kms.serverSideEncryption, kms.sseKmsKeyId], ['aws:kms', 'alias/gpbackup']);
  assert.ok(!('sseKmsKeyId' in parse(yaml({ ...BASE, server_side_encryption: 'aws:kms' }))));

  for (const storageClass of ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE',
    'REDUCED_REDUNDANCY', 'EXPRESS_ONEZONE', 'COLD', 'HDD2']) {
    assert.equal(parse(yaml({ ...BASE, storage_class: storageClass })).storageClass, storageClass);
  }
  assert.equal(parse(yaml({ ...BASE, force_path_style: 'on' })).forcePathStyle, true);
  assert.equal(parse(yaml({ ...BASE, force_path_style: '"off"' })).forcePathStyle, false);

  for (const profile of ['prod', 'team.backup+ro@example-1', 'A_B']) assert.equal(parse(yaml({ ...BASE, aws_profile: profile })).awsProfile, profile);
  for (const arn of ['arn:aws:iam::123456789012:role/gpbackup', 'arn:aws-cn:iam::123456789012:role/service/gp-backup',
    'arn:aws-us-gov:iam::000000000000:role/a']) {
    assert.equal(parse(yaml({ ...BASE, role_arn: arn })).roleArn, arn);
  }
  const none = parse(yaml(BASE));
  for (const key of ['caBundle', 'serverSideEncryption', 'sseKmsKeyId', 'storageClass', 'awsProfile', 'roleArn']) assert.ok(!(key in none), key);
});

test('sse_kms_key_id only with server_side_encryption: aws:kms', () => {
  const rule = 'sse_kms_key_id can only be used with server_side_encryption: aws:kms';
  assert.deepEqual(problems(yaml({ ...BASE, sse_kms_key_id: 'alias/gpbackup' })), [`${rule} (line 6)`]);
  assert.deepEqual(problems(yaml({ ...BASE, server_side_encryption: 'AES256', sse_kms_key_id: 'alias/gpbackup' })), [`${rule} (line 7)`]);
  assert.deepEqual(problems(yaml({ ...BASE, server_side_encryption: '""', sse_kms_key_id: 'alias/gpbackup' })), [`${rule} (line 7)`]);
  // An empty key ID is no key ID: nothing to object to.
  assert.equal(parse(yaml({ ...BASE, sse_kms_key_id: '""' })).sseKmsKeyId, undefined);
  assert.deepEqual(problems(yaml({ ...BASE, server_side_encryption: 'aws:kms', sse_kms_key_id: '"alias/gp backup"' })), [
    'option "sse_kms_key_id" (line 7): must be a KMS key ID, key ARN or alias, without spaces, got "alias/gp backup"',
  ]);
});

test('aws_profile only without a key pair: the pair would win', () => {
  const rule = 'aws_profile cannot be used with aws_access_key_id: the key pair would be used and the profile ignored; remove one of them';
  assert.deepEqual(problems(yaml({ ...BASE, aws_access_key_id: 'AKIAEXAMPLE', aws_secret_access_key: 'secret', aws_profile: 'prod' })), [
    `${rule} (line 8)`,
  ]);
  // With half a pair, both rules speak.
  assert.deepEqual(problems(yaml({ ...BASE, aws_profile: 'prod', aws_access_key_id: 'AKIAEXAMPLE' })), [
    `${rule} (line 6)`,
    'aws_secret_access_key must be set when aws_access_key_id is (line 7)',
  ]);
  assert.equal(parse(yaml({ ...BASE, aws_profile: 'prod', aws_access_key_id: '""', aws_secret_access_key: '' })).awsProfile, 'prod');
  const withRole = parse(yaml({ ...BASE, aws_profile: 'prod', role_arn: 'arn:aws:iam::123456789012:role/gpbackup' }));
  assert.deepEqual([withRole.awsProfile, withRole.roleArn], ['prod', 'arn:aws:iam::123456789012:role/gpbackup']);
});

test('ca_bundle: a readable file holding a PEM certificate, checked when the config is read', (t) => {
  assert.equal(parse(yaml({ ...BASE, ca_bundle: CA_PEM })).caBundle, CA_PEM);
  const bundle = (path: string) => problems(yaml({ ...BASE, ca_bundle: JSON.stringify(path) }));

  const missing = join(FILES, 'missing.pem');
  assert.deepEqual(bundle(missing), [`option "ca_bundle" (line 6): cannot read ${missing}: no such file`]);
  assert.deepEqual(bundle(FILES), [`option "ca_bundle" (line 6): cannot read ${FILES}: it is a directory`]);
  assert.deepEqual(bundle(join(CA_PEM, 'x')), [`option "ca_bundle" (line 6): cannot read ${join(CA_PEM, 'x')}: a part of the path is not a directory`]);
  assert.deepEqual(bundle('/dev/null'), ['option "ca_bundle" (line 6): /dev/null is not a regular file']);
  const der = join(FILES, 'ca.der');
  writeFileSync(der, Buffer.from([0x30, 0x82, 0x01, 0xb3, 0x30, 0x82, 0x01, 0x59]));
  const key = join(FILES, 'key.pem');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n');
  for (const file of [der, key]) {
    assert.deepEqual(bundle(file), [`option "ca_bundle" (line 6): ${file} holds no PEM certificate (a line -----BEGIN CERTIFICATE-----)`]);
  }
  const big = join(FILES, 'big.pem');
  writeFileSync(big, `-----BEGIN CERTIFICATE-----\n${'A'.repeat(16 * MiB)}\n`);
  assert.deepEqual(bundle(big), [`option "ca_bundle" (line 6): ${big} is larger than 16 MiB: is it a CA bundle?`]);

  // Other problems are still reported with it, and a wrong path is not read at all.
  assert.deepEqual(problems(yaml({ ...BASE, ca_bundle: JSON.stringify(missing), max_retries: '99' })), [
    `option "ca_bundle" (line 6): cannot read ${missing}: no such file`,
    'option "max_retries" (line 7): must be a whole number from 0 to 20, got "99"',
  ]);
  assert.equal(problems(yaml({ ...BASE, ca_bundle: 'ca.pem' })).length, 1);

  t.test('an unreadable file', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, () => {
    const locked = join(FILES, 'locked.pem');
    writeFileSync(locked, readFileSync(CA_PEM));
    chmodSync(locked, 0o000);
    assert.deepEqual(bundle(locked), [`option "ca_bundle" (line 6): cannot read ${locked}: permission denied`]);
  });
});

test('every new option at fault at once: all reported, in file order', () => {
  const p = problems(
    [
      'executablepath: /x',
      'options:',
      '  region: us-east-1',
      '  bucket: my-bucket',
      '  folder: f',
      '  max_retries: 100',
      '  connect_timeout: 50ms',
      '  request_timeout: forever',
      '  ca_bundle: /nonexistent/ca.pem',
      '  server_side_encryption: AES-256',
      '  sse_kms_key_id: alias/k',
      '  storage_class: Standard',
      '  force_path_style: yes',
      '  backup_max_bandwidth: 1KB/s',
      '  restore_max_bandwidth: lots',
      '  aws_profile: "a b"',
      '  role_arn: arn:aws:iam::1:role/x',
      '',
    ].join('\n'),
  );
  assert.deepEqual(p, [
    'option "max_retries" (line 6): must be a whole number from 0 to 20, got "100"',
    'option "connect_timeout" (line 7): must be from 100ms to 10m, got "50ms"',
    'option "request_timeout" (line 8): must be a duration: a number and a unit ms, s or m, such as 500ms, 10s, 1.5s or 2m (a bare number is seconds), got "forever"',
    'option "ca_bundle" (line 9): cannot read /nonexistent/ca.pem: no such file',
    'option "server_side_encryption" (line 10): must be AES256 or aws:kms, written exactly so, got "AES-256"',
    'sse_kms_key_id can only be used with server_side_encryption: aws:kms (line 11)',
    'option "storage_class" (line 12): must be a storage class name of uppercase letters, digits and underscores, such as STANDARD_IA or GLACIER_IR, got "Standard"',
    'option "force_path_style" (line 13): must be on or off (lowercase), got "yes"',
    'option "backup_max_bandwidth" (line 14): must be 0 (unlimited) or at least 64KiB/s, got "1KB/s"',
    'option "restore_max_bandwidth" (line 15): must be a size a second such as 100MB/s or 1.5GB/s (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), or 0 for unlimited, got "lots"',
    'option "aws_profile" (line 16): must be a profile name: letters, digits and _ . + @ -, got "a b"',
    'option "role_arn" (line 17): must be an IAM role ARN such as arn:aws:iam::123456789012:role/gpbackup, got "arn:aws:iam::1:role/x"',
  ]);
});

test('loadConfig warns, in the log, when a file with a secret is readable by others; never the secret itself', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'config-mode-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY';
  const token = 'FwoGZXIvYXdzEXAMPLETOKEN';
  let run = 0;
  /** The log lines loadConfig writes for a config file of this text and mode. */
  const logged = (text: string, mode: number): string[] => {
    const file = join(dir, `s3-${++run}.yaml`);
    writeFileSync(file, text);
    chmodSync(file, mode);
    const logDir = join(dir, `log-${run}`);
    mkdirSync(logDir);
    const logger = new Logger(() => logDir);
    try {
      assert.equal(loadConfig(file, logger).configPath, file);
    } finally {
      logger.close();
    }
    return readdirSync(logDir).flatMap(name => readFileSync(join(logDir, name), 'utf8').split('\n').filter(Boolean));
  };
  const keyPair = yaml({ ...BASE, aws_access_key_id: 'AKIAEXAMPLE', aws_secret_access_key: secret });
  const withToken = yaml({ ...BASE, aws_access_key_id: 'AKIAEXAMPLE', aws_secret_access_key: secret, aws_session_token: token });

  const [line, ...more] = logged(keyPair, 0o644);
  assert.deepEqual(more, []);
  const file1 = join(dir, 's3-1.yaml');
  assert.match(line!, /^\d{8}:\d\d:\d\d:\d\d gpbackup_s3_plugin:[^:]*:[^:]*:\d{6}-\[WARNING\]:-/);
  assert.ok(line!.endsWith(
    `-[WARNING]:-plugin config ${file1} holds aws_secret_access_key and is readable by group or others (mode 0644): run chmod 600 on it; ` +
      'gpbackup writes its per-host copies in /tmp with mode 0644 anyway, so consider aws_profile, the environment or an instance role instead of a key in the file',
  ), line);

  const [tokenLine] = logged(withToken, 0o640);
  assert.match(tokenLine!, /holds aws_secret_access_key and aws_session_token and is readable by group or others \(mode 0640\)/);
  assert.match(logged(keyPair, 0o604)[0]!, /\(mode 0604\)/);
  for (const text of [line!, tokenLine!]) {
    for (const s of [secret, token, 'EXAMPLEKEY', 'EXAMPLETOKEN']) assert.ok(!text.includes(s), text);
  }

  // Nothing to say: private files, and readable files without a secret (no log file is even created).
  for (const [text, mode] of [[keyPair, 0o600], [withToken, 0o400], [keyPair, 0o700], [yaml(BASE), 0o644],
    [yaml({ ...BASE, aws_secret_access_key: '""' }), 0o644]] as const) {
    assert.deepEqual(logged(text, mode), [], `mode ${mode.toString(8)}`);
  }
});

test('low-speed limit: a size a second (0 turns it off, default 1KiB/s) over 1s to 60m (default 60s)', () => {
  const defaults = parse(yaml(BASE));
  assert.equal(defaults.lowSpeedLimit, 1024);
  assert.equal(defaults.lowSpeedTimeMs, 60_000);
  const limits: [string, number][] = [['0', 0], ['1', 1], ['10KB/s', 10 * 1024], ['"1 MiB / s"', MiB]];
  for (const [text, bytes] of limits) assert.equal(parse(yaml({ ...BASE, low_speed_limit: text })).lowSpeedLimit, bytes, text);
  const times: [string, number][] = [['1s', 1000], ['2', 2000], ['60m', 3_600_000]];
  for (const [text, ms] of times) assert.equal(parse(yaml({ ...BASE, low_speed_time: text })).lowSpeedTimeMs, ms, text);
  assert.deepEqual(problems(yaml({ ...BASE, low_speed_time: '"500ms"' })), ['option "low_speed_time" (line 6): must be from 1s to 60m, got "500ms"']);
  assert.equal(problems(yaml({ ...BASE, low_speed_limit: '"fast"' })).length, 1);
});

test('encryption: the Go plugin\'s rule, anything but off (in any case) is on; other values than on/off warn', () => {
  const read = (value: string) => parse(yaml({ ...BASE, encryption: value }));
  for (const value of ['on', 'ON', '""']) assert.deepEqual([read(value).useTls, read(value).warnings], [true, []], value);
  for (const value of ['off', 'OFF', 'Off']) assert.equal(read(value).useTls, false, value);
  assert.deepEqual(read('off').warnings, []);
  for (const value of ['yes', 'true', '"1"', 'https', '" off"']) {
    const config = read(value);
    assert.equal(config.useTls, true, value);
    assert.equal(config.warnings.length, 1, value);
    assert.match(config.warnings[0]!, /^option "encryption" \(line 6\): ".*" is read as on \(https\), as the Go plugin reads any value other than off; write on or off$/);
  }
});

test('folder: cleaned as the Go plugin\'s requests clean it; one that cleans to nothing or climbs out of the bucket is refused', () => {
  for (const [folder, cleaned] of [['prod/cluster1/', 'prod/cluster1'], ['/prod', 'prod'], ['a//b', 'a/b'], ['a/./b/../c', 'a/c']]) {
    assert.equal(parse(yaml({ ...BASE, folder: JSON.stringify(folder) })).folder, cleaned, folder);
  }
  assert.deepEqual(problems(yaml({ ...BASE, folder: '"/"' })), [
    'option "folder" (line 5): cleans to nothing (only slashes, "." or ".." that cancel out); name a folder such as backups/prod, got "/"',
  ]);
  assert.deepEqual(problems(yaml({ ...BASE, folder: '"../other"' })), [
    'option "folder" (line 5): its ".." segments climb out of the bucket; name the folder without them, such as backups/prod, got "../other"',
  ]);
});
