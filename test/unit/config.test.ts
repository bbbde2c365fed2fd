import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { loadConfig, parseConfigText } from '../../src/config/load.js';
import type { PluginConfig } from '../../src/config/types.js';
import { ConfigError, PluginError } from '../../src/protocol/errors.js';

const PATH = '/tmp/20240101010101_s3.yaml';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const schema = JSON.parse(readFileSync(new URL('../../schemas/plugin-config.schema.json', import.meta.url), 'utf8'));

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
    '  backup_max_concurrent_requests: "6"',
    '  backup_multipart_chunksize: "500MB"',
    '  backup_plugin_version: ""',
    '  bucket: "my-bucket"',
    '  encryption: "on"',
    '  endpoint: "https://minio.example.com:9000/"',
    '  folder: "backups/prod/"',
    '  http_proxy: "http://proxy.example.com:3128"',
    '  logger_verbosity: "verbose"',
    '  pgport: "5432"',
    '  region: "us-east-1"',
    '  remove_duplicate_bucket: "false"',
    '  restore_max_concurrent_requests: "8"',
    '  restore_multipart_chunksize: "10MB"',
    '  restore_subset: "on"',
    '',
  ].join('\n');
  const expected: PluginConfig = {
    configPath: PATH,
    executablePath: '/usr/local/gpdb/bin/gpbackup_s3_plugin',
    bucket: 'my-bucket',
    folder: 'backups/prod/',
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
    pgport: '5432',
    backupPluginVersion: '',
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
});

test('Windows line ends and a byte-order mark are fine, and lines still count', () => {
  const text = `\uFEFF${yaml({ ...BASE, encryption: 'x' }).replace(/\n/g, '\r\n')}`;
  assert.deepEqual(problems(text), ['option "encryption" (line 6): must be on or off (lowercase), got "x"']);
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
    restorePartSize: 16 * MiB,
    restoreConcurrency: 6,
    removeDuplicateBucket: false,
    loggerVerbosity: 'info',
    restoreSubset: false,
  });
  const props = schema.properties.options.properties;
  assert.equal(props.backup_multipart_chunksize.default, '16MiB');
  assert.equal(props.backup_max_concurrent_requests.default, '4');
  assert.equal(props.restore_multipart_chunksize.default, '16MiB');
  assert.equal(props.restore_max_concurrent_requests.default, '6');
  assert.equal(props.encryption.default, 'on');
});

test('an option left empty takes its default, as in the Go plugin', () => {
  const empty = ['encryption', 'backup_multipart_chunksize', 'backup_max_concurrent_requests', 'restore_multipart_chunksize',
    'restore_max_concurrent_requests', 'remove_duplicate_bucket', 'logger_verbosity', 'restore_subset', 'http_proxy',
    'aws_access_key_id', 'aws_secret_access_key', 'aws_session_token', 'endpoint'];
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

test('concurrency: a whole number 1 to 64; leading zeros, a plus sign and spaces are fine', () => {
  const cases: [string, number][] = [['1', 1], ['64', 64], ['06', 6], ['+8', 8], ['" 7 "', 7], ['0064', 64]];
  for (const [text, n] of cases) assert.equal(parse(yaml({ ...BASE, backup_max_concurrent_requests: text })).backupConcurrency, n, text);
});

test('part sizes: 5 MiB to 5 GiB', () => {
  const ok: [string, number][] = [['5MB', 5 * MiB], ['5242880', 5 * MiB], ['5GB', 5 * GiB], ['5GiB', 5 * GiB], ['1.5GB', 1.5 * GiB]];
  for (const [text, bytes] of ok) assert.equal(parse(yaml({ ...BASE, restore_multipart_chunksize: text })).restorePartSize, bytes, text);
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
    ['encryption', q('yes'), /must be on or off/],
    ['encryption', q('ON'), /must be on or off/],
    ['encryption', q('true'), /must be on or off/],
    ['http_proxy', q('proxy:3128'), /must be an http:\/\/ or https:\/\/ URL/],
    ['http_proxy', q('socks5://proxy:1080'), /must be an http:\/\/ or https:\/\/ URL/],
    ['backup_multipart_chunksize', q('100M'), /must be a size such as 16MB/],
    ['backup_multipart_chunksize', q('-5MB'), /must be a size/],
    ['restore_multipart_chunksize', q('5 XB'), /must be a size/],
    ['restore_multipart_chunksize', q('abc'), /must be a size/],
    ['backup_max_concurrent_requests', q('abc'), /must be a whole number from 1 to 64, got "abc"/],
    ['backup_max_concurrent_requests', q('0'), /must be a whole number from 1 to 64/],
    ['backup_max_concurrent_requests', q('65'), /must be a whole number from 1 to 64/],
    ['restore_max_concurrent_requests', q('-1'), /must be a whole number from 1 to 64/],
    ['restore_max_concurrent_requests', q('1.5'), /must be a whole number from 1 to 64/],
    ['remove_duplicate_bucket', q('yes'), /must be true or false/],
    ['remove_duplicate_bucket', q('True'), /must be true or false/],
    ['logger_verbosity', q('warning'), /must be error, info, verbose or debug/],
    ['logger_verbosity', q('DEBUG'), /must be error, info, verbose or debug/],
    ['restore_subset', q('true'), /must be on or off/],
    ['pgport', q('abc'), /must be a port number/],
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
      '  encryption: yes',
      '  backup_max_concurrent_requests: abc',
      '  restore_multipart_chunksize: 1MB',
      '  folder: ""',
      '',
    ].join('\n'),
  );
  assert.deepEqual(p, [
    'region or endpoint must be set',
    'option "bucket" (line 3): must be a bucket name: 3 to 255 letters, digits, dots, hyphens or underscores, without s3:// or a path (put the path in folder), got "s3://b"',
    'option "encryption" (line 4): must be on or off (lowercase), got "yes"',
    'option "backup_max_concurrent_requests" (line 5): must be a whole number from 1 to 64, got "abc"',
    `option "restore_multipart_chunksize" (line 6): must be from 5MiB to 5GiB (S3's part size limits), got "1MB"`,
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
      '  encryption: maybe',
      'executablepath: /y',
      '',
    ].join('\n'),
  );
  assert.deepEqual(p, [
    'option "bucket" (line 6): appears more than once',
    'option "encryption" (line 7): must be on or off (lowercase), got "maybe"',
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
      '  storage_class: GLACIER',
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
    'option "storage_class" (line 10): unknown option',
    'unknown key "extra" (line 11): only executablepath and options belong at the top level',
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
