/**
 * decrypt --key-file <file> [--key-file <older> ...]: an object of client-side encryption read
 * from stdin (for example from `aws s3 cp s3://... -`), its plaintext to stdout, every segment
 * verified; a plain object passes through unchanged. No config, no S3: a way out that needs
 * nothing but this executable and the key.
 */
import { readKeyFile } from '../storage/encryption/keyfile.js';
import { DetectingSink } from '../storage/encryption/sink.js';
import type { UserKey } from '../storage/encryption/format.js';
import { StreamSink } from '../storage/sink.js';
import { FdSource } from '../storage/source.js';
import { PluginError } from '../errors.js';
import { UsageError } from './errors.js';

const READ_SIZE = 1024 * 1024;

export async function decrypt(args: string[]): Promise<void> {
  const keys: UserKey[] = [];
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] !== '--key-file' || args[i + 1] === undefined) throw new UsageError('decrypt takes --key-file <file>, once or more');
    try {
      keys.push(readKeyFile(args[i + 1]!));
    } catch (err) {
      throw new PluginError(`decrypt: key file: ${(err as Error).message}`);
    }
  }
  const out = new StreamSink(process.stdout, 'stdout');
  const sink = new DetectingSink(out, keys, 'stdin');
  const source = new FdSource(0);
  const buf = Buffer.allocUnsafe(READ_SIZE);
  for (;;) {
    const { data } = await source.read(buf, false);
    if (data.length) await sink.write(data);
    if (data.length < buf.length) break;
  }
  await sink.finish();
  await out.flush();
  if (sink.kind === 'plain') process.stderr.write('decrypt: stdin was not client-side encrypted; copied unchanged\n');
}
