/**
 * Where requests go: the endpoint (or AWS's for the region), path-style
 * (host/bucket/key, the Go plugin's only mode) or virtual-hosted
 * (bucket.host/key) addressing, and remove_duplicate_bucket for endpoints
 * that already route to the bucket.
 */
import type { PluginConfig } from '../../config/types.js';
import { uriEncode } from './sigv4.js';

/** The region requests are signed for when only an endpoint is configured. */
export const DEFAULT_SIGNING_REGION = 'us-east-1';

export interface Target {
  https: boolean;
  hostname: string;
  port: number;
  /** The Host header (and the host SigV4 signs). */
  host: string;
  /** Encoded request path. */
  path: string;
}

/** http(s)://host[:port][/path] from the endpoint option, with the scheme `encryption` implies when none is given. */
export function endpointUrl(endpoint: string, useTls: boolean): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `${useTls ? 'https' : 'http'}://${endpoint}`;
  return withScheme.replace(/\/+$/, '');
}

/** AWS's own endpoint for a region. */
function awsEndpoint(region: string, useTls: boolean): string {
  const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${useTls ? 'https' : 'http'}://s3.${region}.${domain}`;
}

export class Endpoint {
  readonly region: string;
  private readonly base: URL;

  constructor(private readonly config: PluginConfig) {
    this.region = config.region || DEFAULT_SIGNING_REGION;
    this.base = new URL(config.endpoint ? endpointUrl(config.endpoint, config.useTls) : awsEndpoint(this.region, config.useTls));
  }

  /** The endpoint as messages name it: scheme, host, port and path, never a userinfo. */
  get shown(): string {
    return `${this.base.protocol}//${this.base.host}${this.base.pathname.replace(/\/+$/, '')}`;
  }

  /** `key` undefined: the bucket itself (listings, multi-object delete). */
  target(key?: string): Target {
    const https = this.base.protocol === 'https:';
    const port = this.base.port ? Number(this.base.port) : https ? 443 : 80;
    const basePath = this.base.pathname.replace(/\/+$/, '');
    const keyPath = key === undefined ? '/' : `/${uriEncode(key, true)}`;
    let hostname = this.base.hostname;
    let path: string;
    if (!this.config.forcePathStyle) {
      hostname = `${this.config.bucket}.${hostname}`;
      path = basePath + keyPath;
    } else if (this.config.removeDuplicateBucket) {
      path = basePath + keyPath;
    } else {
      path = `${basePath}/${uriEncode(this.config.bucket)}${key === undefined ? '' : keyPath}`;
    }
    const host = this.base.port ? `${hostname}:${port}` : hostname;
    // An IPv6 literal keeps its brackets in Host but not in the address to connect to.
    return { https, hostname: hostname.replace(/^\[(.*)\]$/, '$1'), port, host, path };
  }
}
