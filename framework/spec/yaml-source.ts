/** A parsed YAML file that remembers where every node came from, so problems can name file:line:column. */
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { SpecError, type Location } from './spec-error.js';

export class YamlSource {
  private constructor(
    readonly file: string,
    readonly text: string,
    readonly data: unknown,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  static read(file: string): YamlSource {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw new SpecError([{ where: { file, line: 0, col: 0 }, key: '', message: `cannot read the spec file: ${reason}` }]);
    }
    return YamlSource.parse(file, text);
  }

  static parse(file: string, text: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
    if (doc.errors.length > 0) {
      throw new SpecError(
        doc.errors.map((e) => {
          const pos = lines.linePos(e.pos[0]);
          return { where: { file, line: pos.line, col: pos.col }, key: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` };
        }),
      );
    }
    return new YamlSource(file, text, doc.toJS({ maxAliasCount: 100 }), doc, lines);
  }

  /** Where the node at `path` (keys and indices) starts; for `key: true`, where its key is written. Falls back to the
   * nearest ancestor that exists. */
  locate(path: (string | number)[], opts: { key?: boolean } = {}): Location {
    let node: unknown = this.doc.contents;
    let found: Node | null = (this.doc.contents as Node) ?? null;
    for (let i = 0; i < path.length; i++) {
      const part = path[i];
      let next: unknown = undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(part));
        if (pair) {
          if (opts.key && i === path.length - 1) return this.at(pair.key as Node);
          next = pair.value;
        }
      } else if (isSeq(node) && typeof part === 'number') {
        next = node.items[part];
      }
      if (next === undefined || next === null) break;
      node = next;
      found = next as Node;
    }
    return found ? this.at(found) : { file: this.file, line: 1, col: 1 };
  }

  private at(node: Node): Location {
    const offset = node.range?.[0] ?? 0;
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, col: pos.col };
  }
}
