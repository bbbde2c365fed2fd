/**
 * Failures of the connection itself (no complete answer from the server), worded for a DBA.
 * They are retried, except a certificate OpenSSL refuses.
 */
import type { Target } from './endpoint.js';
import { shownProxy, type ProxyChoice } from './proxy.js';

/** A request that got no (complete) answer: the connection failed, timed out or was reset. */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'NetworkError';
  }
}

/** Nothing moved either way on a request to `host` for `ms`. */
export function requestTimedOut(host: string, ms: number): NetworkError {
  return new NetworkError(`no answer from ${host} for ${ms / 1000} s`, 'RequestTimeout');
}

/** A connection to `host` (through `proxy`, if given) was not established (TCP, and TLS for https) within `ms`. */
export function connectTimedOut(host: string, ms: number, proxy?: ProxyChoice): NetworkError {
  const via = proxy ? ` through the proxy ${describeProxy(proxy)}` : '';
  return new NetworkError(`connecting to ${host}${via} timed out after ${ms / 1000} s`, 'ConnectTimeout');
}

/** `http://127.0.0.1:3128 (HTTPS_PROXY)`: no password, and where it was set. */
export function describeProxy(proxy: ProxyChoice): string {
  return `${shownProxy(proxy.url)} (${proxy.source})`;
}

/** Failures of the connection to the proxy itself: with a proxy, the plugin connects to nothing else. */
const PROXY_CONNECT_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused by the proxy',
  ENOTFOUND: 'cannot resolve the host name of the proxy',
  EAI_AGAIN: 'cannot resolve the host name of the proxy (DNS lookup failed)',
  EHOSTUNREACH: 'no route to the proxy',
  ENETUNREACH: 'network unreachable for the proxy',
};

/** OpenSSL's verdicts on a server certificate (Node passes them as the error code). */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'HOSTNAME_MISMATCH',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
]);

/** `connect ECONNREFUSED 127.0.0.1:9` -> a sentence for a DBA. `proxy`: the proxy the request went through. */
export function describeNetworkError(err: NodeJS.ErrnoException, target: Target, proxy?: ProxyChoice): NetworkError {
  const where = `${target.https ? 'https' : 'http'}://${target.host}`;
  if (err instanceof NetworkError) return err;
  const code = err.code ?? 'ERR_NETWORK';
  const proxyText = proxy && PROXY_CONNECT_TEXT[code];
  if (proxyText) {
    const option = proxy.source === 'http_proxy' ? 'the http_proxy option' : proxy.source;
    return new NetworkError(`${proxyText} ${describeProxy(proxy)} on the way to ${where} (check ${option})`, code);
  }
  const text: Record<string, string> = {
    ECONNREFUSED: `connection refused by ${where}`,
    ENOTFOUND: `cannot resolve the host name of ${where}`,
    EAI_AGAIN: `cannot resolve the host name of ${where} (DNS lookup failed)`,
    ECONNRESET: `the connection to ${where} was reset`,
    EPIPE: `the connection to ${where} was closed while sending`,
    EHOSTUNREACH: `no route to ${where}`,
    ENETUNREACH: `network unreachable for ${where}`,
  };
  if (TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_TLS_CERT') || code.includes('CERT')) {
    // Node's hint about --use-system-ca cannot apply to the executable: it takes no Node flags.
    const reason = err.message.replace(/;? ?if the root CA is installed locally.*$/s, '').trim();
    return new NetworkError(`TLS certificate of ${where} not trusted: ${reason} (name its CA with the ca_bundle option)`, 'TlsCertificate');
  }
  return new NetworkError(text[code] ?? `${where}: ${err.message}`, code);
}
