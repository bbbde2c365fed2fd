/**
 * Which proxy a request goes through: the http_proxy option for every request, or else the
 * environment, by the rules of Go's net/http ProxyFromEnvironment (golang.org/x/net/http/httpproxy),
 * which the Go plugin's AWS SDK follows:
 *  - HTTPS_PROXY (or https_proxy) for https URLs, HTTP_PROXY (or http_proxy) for http URLs; the
 *    upper-case name wins; HTTP_PROXY is ignored when REQUEST_METHOD is set (a CGI environment);
 *  - a value without a scheme is taken as http://host[:port];
 *  - never for `localhost` or a loopback address (127.0.0.0/8, ::1), whatever NO_PROXY says;
 *  - NO_PROXY (or no_proxy), comma-separated: `*` turns proxies off; an IP address or a CIDR
 *    block matches hosts given as addresses; `example.com` matches it and its subdomains,
 *    `.example.com` (or `*.example.com`) its subdomains only; `host:port` also requires the port
 *    (443 or 80 when the URL has none).
 */
import { BlockList, isIP } from 'node:net';
import { PluginError } from '../../errors.js';

export interface ProxyChoice {
  url: URL;
  /** Where it was named, for messages: `http_proxy` (the option) or the variable's name. */
  source: string;
}

type Env = Record<string, string | undefined>;

function firstSet(env: Env, ...names: string[]): [string, string] | undefined {
  for (const name of names) {
    const value = env[name];
    if (value) return [name, value];
  }
  return undefined;
}

/** A proxy URL as Go parses one: a bare host[:port] means http. */
export function parseProxyUrl(value: string): URL {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return new URL(`http://${value}`); // host:port parses as a scheme
    throw new Error(`proxy scheme ${url.protocol.replace(/:$/, '')} is not supported (http or https)`);
  } catch (err) {
    if ((err as Error).message.includes('not supported')) throw err;
    return new URL(`http://${value}`);
  }
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether NO_PROXY exempts `host` (lower-case, no brackets) on `port`. */
export function exemptByNoProxy(noProxy: string, host: string, port: number): boolean {
  for (let entry of noProxy.split(',')) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [net, bits] = entry.split('/');
      const family = isIP(net!);
      if (family && isIP(host) === family) {
        const list = new BlockList();
        try {
          list.addSubnet(net!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
          if (list.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
        } catch {
          // not a CIDR block: ignored, as Go ignores it
        }
      }
      continue;
    }
    let entryHost = entry;
    let entryPort: number | undefined;
    const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (withPort) {
      entryHost = withPort[1]!;
      entryPort = Number(withPort[2]);
    }
    entryHost = entryHost.replace(/^\[(.*)\]$/, '$1');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (isIP(entryHost)) {
      if (entryHost === host) return true;
      continue;
    }
    if (entryHost.startsWith('*.')) entryHost = entryHost.slice(1);
    if (entryHost.startsWith('.')) {
      if (host.endsWith(entryHost)) return true;
    } else if (host === entryHost || host.endsWith(`.${entryHost}`)) {
      return true;
    }
  }
  return false;
}

/**
 * The proxy for a request to `hostname`:`port` over http or https, or undefined to connect
 * directly. `option` is the http_proxy option: it applies to every request.
 */
export function chooseProxy(option: string | undefined, https: boolean, hostname: string, port: number, env: Env = process.env): ProxyChoice | undefined {
  if (option) return { url: proxyUrl(option, 'http_proxy'), source: 'http_proxy' };
  const named = https ? firstSet(env, 'HTTPS_PROXY', 'https_proxy') : env.REQUEST_METHOD ? undefined : firstSet(env, 'HTTP_PROXY', 'http_proxy');
  if (!named) return undefined;
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  if (isLoopback(host)) return undefined;
  const noProxy = firstSet(env, 'NO_PROXY', 'no_proxy');
  if (noProxy && exemptByNoProxy(noProxy[1], host, port)) return undefined;
  return { url: proxyUrl(named[1], named[0]), source: named[0] };
}

function proxyUrl(value: string, source: string): URL {
  try {
    return parseProxyUrl(value);
  } catch (err) {
    throw new PluginError(`${source}: ${(err as Error).message}`);
  }
}

/** The proxy URL for messages and logs: no user name or password. */
export function shownProxy(url: URL): string {
  return `${url.protocol}//${url.host}`;
}
