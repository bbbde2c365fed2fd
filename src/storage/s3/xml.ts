/**
 * The little XML S3 answers with (errors, uploads, listings, delete results) and
 * the two request bodies the plugin sends. S3's answers are flat and regular:
 * elements are read by name, without a general XML parser.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function xmlDecode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, e: string) => {
    if (e[0] !== '#') return ENTITIES[e] ?? whole;
    const code = e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

export function xmlEncode(text: string): string {
  // Keys may hold characters XML 1.0 cannot carry literally (control characters): as references.
  return text.replace(/[<>&'"\u0000-\u001f]/g, c => {
    switch (c) {
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '&':
        return '&amp;';
      case "'":
        return '&apos;';
      case '"':
        return '&quot;';
      default:
        return `&#x${c.charCodeAt(0).toString(16)};`;
    }
  });
}

/** The text of every `<name>...</name>` in `xml` (not nested in each other). */
export function elements(xml: string, name: string): string[] {
  const re = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>|<${name}(?:\\s[^>]*)?/>`, 'g');
  const out: string[] = [];
  for (const m of xml.matchAll(re)) out.push(m[1] ?? '');
  return out;
}

/** The decoded text of the first `<name>` element, or undefined. */
export function text(xml: string, name: string): string | undefined {
  const [first] = elements(xml, name);
  return first === undefined ? undefined : xmlDecode(first);
}

/** An ISO 8601 date of a listing (LastModified), or undefined when absent or unreadable. */
export function dateOf(value: string | undefined): Date | undefined {
  const at = value === undefined ? undefined : new Date(value);
  return at && !Number.isNaN(at.getTime()) ? at : undefined;
}
