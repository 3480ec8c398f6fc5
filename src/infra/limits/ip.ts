// Client addresses: Fastify resolves `request.ip` from X-Forwarded-For only when the direct peer
// is in TRUSTED_PROXIES (its `trustProxy` option); here it is only normalised and matched.
import { BlockList, isIPv4 } from 'node:net';

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
export function normalIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/**
 * Whom the limits count an address as: an IPv4 address itself; for IPv6 its /64, the block one
 * subscriber gets (and picks addresses from at will: privacy addresses change daily), so that
 * hopping addresses buys no new window or sign-in count and the owner's home stays one known
 * address. No regex: called on every limited request.
 */
export function limitSubject(ip: string): string {
  if (!ip.includes(':') || ip.includes('.')) return ip;
  const cut = ip.indexOf('::');
  let groups: string[];
  if (cut === -1) groups = ip.split(':');
  else {
    const head = cut === 0 ? [] : ip.slice(0, cut).split(':');
    const tail = cut + 2 >= ip.length ? [] : ip.slice(cut + 2).split(':');
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  let net = '';
  for (let i = 0; i < 4; i++) net += `${i ? ':' : ''}${(parseInt(groups[i] || '0', 16) || 0).toString(16)}`;
  return `${net}::/64`;
}

/** Matches addresses against CIDR ranges (`10.0.0.0/8`, `::1`, `2001:db8::/32`). */
export class IpRanges {
  private readonly list = new BlockList();
  // BlockList.check crosses into C++ on every call; answers per address are remembered (bounded).
  private readonly seen = new Map<string, boolean>();
  readonly empty: boolean;

  constructor(ranges: readonly string[]) {
    for (const range of ranges) {
      const [addr = '', bits] = range.split('/');
      const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.list.addAddress(addr, type);
      else this.list.addSubnet(addr, Number(bits), type);
    }
    this.empty = ranges.length === 0;
  }

  has(ip: string): boolean {
    if (this.empty) return false;
    let hit = this.seen.get(ip);
    if (hit === undefined) {
      const addr = normalIp(ip);
      try {
        hit = this.list.check(addr, isIPv4(addr) ? 'ipv4' : 'ipv6');
      } catch {
        hit = false;
      }
      if (this.seen.size >= 10_000) this.seen.clear();
      this.seen.set(ip, hit);
    }
    return hit;
  }
}
