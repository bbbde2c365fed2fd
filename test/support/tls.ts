/**
 * An https front for the plain-http S3 test server, for the TLS tests: a throwaway CA (made
 * with the openssl CLI into a temp dir), a server certificate it signs for 127.0.0.1 and
 * localhost, and a node:https server on 127.0.0.1 that passes every request to the S3 server
 * unchanged (method, path, headers byte for byte with the Host the client signed, bodies
 * streamed both ways). A second, unrelated CA is made too, to show that trusting the wrong
 * CA fails.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const OPENSSL = '/usr/bin/openssl';
const run = promisify(execFile);

/** Every section the certificates need, so that the system's openssl.cnf plays no part. */
const OPENSSL_CONFIG_TEMPLATE = `
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost@EXTRA_NAMES@
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

export interface TlsFront {
  /** https://127.0.0.1:<port>, for the plugin's endpoint option. */
  endpoint: string;
  port: number;
  /** PEM of the CA that signed the front's certificate. */
  caFile: string;
  /** PEM of a CA that signed nothing the front presents. */
  otherCaFile: string;
  /** Requests that completed a TLS handshake and reached the front. */
  requests: number;
  /** Handshakes that failed (the client refused the certificate, or spoke no TLS). */
  handshakeFailures: number;
  stop(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run(OPENSSL, args, { cwd: dir });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || (err as Error).message}`);
  }
}

/** A P-256 key and a self-signed CA certificate: <name>.key, <name>.pem. */
async function makeCa(dir: string, name: string, commonName: string): Promise<string> {
  await openssl(dir, [
    'req', '-x509', '-new', '-nodes', '-config', 'openssl.cnf', '-extensions', 'ca_ext',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${commonName}`,
  ]);
  return join(dir, `${name}.pem`);
}

/** server.key and server.pem, signed by the CA <ca>.key/<ca>.pem, for 127.0.0.1 and localhost. */
async function makeServerCertificate(dir: string, ca: string): Promise<void> {
  await openssl(dir, [
    'req', '-new', '-nodes', '-config', 'openssl.cnf',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1',
  ]);
  await openssl(dir, [
    'x509', '-req', '-in', 'server.csr', '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', '2',
    '-days', '2', '-extfile', 'openssl.cnf', '-extensions', 'server_ext', '-out', 'server.pem',
  ]);
}

/** An https front on 127.0.0.1 (random port) for the http server listening on targetPort; `names`: more DNS names its certificate holds. */
export async function startTlsFront(targetPort: number, names: string[] = []): Promise<TlsFront> {
  const dir = mkdtempSync(join(tmpdir(), 'gpb-s3-tls-'));
  try {
    const extra = names.map(n => `, DNS:${n}`).join('');
    writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONFIG_TEMPLATE.replace('@EXTRA_NAMES@', extra));
    const [caFile, otherCaFile] = await Promise.all([
      makeCa(dir, 'ca', 'gpbackup_s3_plugin test CA'),
      makeCa(dir, 'other-ca', 'gpbackup_s3_plugin unrelated test CA'),
    ]);
    await makeServerCertificate(dir, 'ca');
    return await listen(dir, targetPort, caFile, otherCaFile);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function listen(dir: string, targetPort: number, caFile: string, otherCaFile: string): Promise<TlsFront> {
  const server = createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) });
  const front = { requests: 0, handshakeFailures: 0 };
  server.on('tlsClientError', (_err, socket) => {
    front.handshakeFailures++;
    socket.destroy();
  });
  server.on('request', (req, res) => {
    front.requests++;
    const upstream = httpRequest({
      host: '127.0.0.1',
      port: targetPort,
      method: req.method,
      path: req.url,
      // The raw list keeps names, order and values (Host included) as the client signed them.
      headers: req.rawHeaders as unknown as Record<string, string>,
    });
    upstream.on('response', answer => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    // A failure on either side ends the other: the client sees a cut connection, as from a real server.
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `https://127.0.0.1:${port}`,
    port,
    caFile,
    otherCaFile,
    get requests() {
      return front.requests;
    },
    get handshakeFailures() {
      return front.handshakeFailures;
    },
    async stop() {
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
