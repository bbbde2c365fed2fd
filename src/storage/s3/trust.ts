/**
 * The certificate authorities https connections are verified against: the runtime's own
 * roots (with NODE_EXTRA_CA_CERTS), the host's system store as Go's crypto/x509 finds it on
 * Linux, and ca_bundle (or AWS_CA_BUNDLE). One TLS context holds them all, built once per
 * process on the first https connection and shared by every connection: S3 (node:http and the
 * direct GET path), CONNECT tunnels through a proxy, STS, SSO and web identity.
 *
 * The system store, as Go reads it: SSL_CERT_FILE if set, else the first of the usual bundle
 * files that exists; plus every file of SSL_CERT_DIR (colon-separated) if set. Go also reads
 * /etc/ssl/certs and /etc/pki/tls/certs when SSL_CERT_DIR is unset; here they are read only
 * when no bundle file exists, because update-ca-certificates and update-ca-trust write the
 * same authorities into the bundle, and reading the directory (some 300 files) would cost
 * every plugin process tens of milliseconds. Node's tls.getCACertificates('system') reads
 * file and directory both (measured 180 ms on Debian 12), so it is not used.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { PluginConfig } from '../../config/types.js';
import { log } from '../../log/gplog.js';
import { PluginError } from '../../errors.js';

/** Go's crypto/x509 root_linux.go certFiles, in its order. */
export const SYSTEM_CERT_FILES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Gentoo, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL 6
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/pki/tls/cacert.pem', // OpenELEC
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // CentOS, RHEL 7
  '/etc/ssl/cert.pem', // Alpine
];
/** Go's certDirectories. */
export const SYSTEM_CERT_DIRS = ['/etc/ssl/certs', '/etc/pki/tls/certs'];

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function certificatesIn(file: string): string[] {
  try {
    return readFileSync(file, 'latin1').match(PEM_CERT) ?? [];
  } catch {
    return [];
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export interface SystemStore {
  certificates: string[];
  /** The files and directories they came from. */
  sources: string[];
}

/** The host's trusted authorities, found as described above. */
export function systemCertificates(env: Record<string, string | undefined> = process.env): SystemStore {
  const sources: string[] = [];
  const certificates: string[] = [];
  const file = env.SSL_CERT_FILE ? env.SSL_CERT_FILE : SYSTEM_CERT_FILES.find(isFile);
  if (file) {
    const found = certificatesIn(file);
    if (found.length) sources.push(file);
    certificates.push(...found);
  }
  const dirs = env.SSL_CERT_DIR ? env.SSL_CERT_DIR.split(':').filter(Boolean) : file && !env.SSL_CERT_FILE ? [] : SYSTEM_CERT_DIRS;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const before = certificates.length;
    for (const name of names) certificates.push(...certificatesIn(join(dir, name)));
    if (certificates.length > before) sources.push(dir);
  }
  return { certificates, sources };
}

/** ca_bundle, or AWS_CA_BUNDLE when ca_bundle is unset: its PEM text, or undefined. */
function extraBundle(config: PluginConfig): string | undefined {
  const file = config.caBundle ?? (process.env.AWS_CA_BUNDLE || undefined);
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const what = config.caBundle ? 'ca_bundle' : 'AWS_CA_BUNDLE';
    throw new PluginError(`reading ${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** The runtime's roots with NODE_EXTRA_CA_CERTS (getCACertificates is Node 22.15+; Bun and older runtimes have rootCertificates). */
function runtimeCertificates(): string[] {
  const getCa = (tls as { getCACertificates?: (type: string) => string[] }).getCACertificates;
  return getCa ? getCa('default') : [...tls.rootCertificates];
}

/**
 * Reads ca_bundle/AWS_CA_BUNDLE now (a missing file is an error before any request) and returns
 * a function that builds the shared TLS context on first use.
 */
export function trustedContext(config: PluginConfig): () => tls.SecureContext {
  const bundle = extraBundle(config);
  let context: tls.SecureContext | undefined;
  return () => {
    if (context) return context;
    const system = systemCertificates();
    const runtime = runtimeCertificates();
    const ca = [...new Set([...runtime, ...system.certificates])];
    log.verbose(
      `TLS: trusting the runtime's ${runtime.length} roots, ${system.certificates.length} from the system store` +
        `${system.sources.length ? ` (${system.sources.join(', ')})` : ''}${bundle ? `, and ${config.caBundle ? 'ca_bundle' : 'AWS_CA_BUNDLE'}` : ''}`,
    );
    try {
      context = tls.createSecureContext({ ca: bundle ? [...ca, bundle] : ca });
    } catch (err) {
      // A damaged system file must not stop a backup that ca_bundle or the runtime's roots can serve.
      log.warn(`TLS: the system certificate store could not be read (${(err as Error).message}); using the runtime's roots only`);
      const fallback = runtimeCertificates();
      context = tls.createSecureContext({ ca: bundle ? [...fallback, bundle] : fallback });
    }
    return context;
  };
}
