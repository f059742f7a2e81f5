// The "Remote GPU hints" language server: diagnostics and hovers from analysis.ts for Python documents and
// notebook cells. Runs in its own process (started by lsp/client.ts over IPC) so analysis never blocks the host.
import type * as Lsp from 'vscode-languageserver/lib/node/main';
// Types from the file, value from the exported subpath (moduleResolution node10 ignores "exports").
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createConnection, ProposedFeatures, TextDocuments }: typeof Lsp = require('vscode-languageserver/node');
import { DiagnosticSeverity, type Diagnostic, type Position } from 'vscode-languageserver-types';

// From the protocol package, whose "exports" node10 resolution cannot see: TextDocumentSyncKind.Incremental.
const SYNC_INCREMENTAL = 2;
interface HoverParams { textDocument: { uri: string }; position: Position }
import { TextDocument } from 'vscode-languageserver-textdocument';
import { analyze, diagnosticMessage, hoverMarkdown, type Finding, type LiveStats } from './analysis';

export const LIVE_STATS_NOTIFICATION = 'remoteGpu/liveStats';
const SOURCE = 'Remote GPU';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const findings = new Map<string, Finding[]>();
let live: LiveStats | undefined;

connection.onInitialize(() => ({
  capabilities: { textDocumentSync: SYNC_INCREMENTAL, hoverProvider: true },
  serverInfo: { name: 'remote-gpu-hints' },
}));

function validate(doc: TextDocument): void {
  const f = analyze(doc.getText());
  findings.set(doc.uri, f);
  const diagnostics: Diagnostic[] = f.map((x) => ({
    range: { start: { line: x.line, character: x.start }, end: { line: x.line, character: x.end } },
    severity: x.kind === 'sync' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
    source: SOURCE,
    code: x.kind === 'sync' ? 'sync-in-loop' : x.kind === 'copy' ? 'copy-in-loop' : 'many-small-copies',
    message: diagnosticMessage(x),
  }));
  void connection.sendDiagnostics({ uri: doc.uri, diagnostics });
}

documents.onDidChangeContent((e: Lsp.TextDocumentChangeEvent<TextDocument>) => validate(e.document));
documents.onDidClose((e: Lsp.TextDocumentChangeEvent<TextDocument>) => { findings.delete(e.document.uri); void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] }); });

connection.onHover((p: HoverParams) => {
  const f = findings.get(p.textDocument.uri)?.find((x) => x.line === p.position.line && p.position.character >= x.start && p.position.character <= x.end);
  if (!f) return null;
  return {
    contents: { kind: 'markdown', value: hoverMarkdown(f, live) },
    range: { start: { line: f.line, character: f.start }, end: { line: f.line, character: f.end } },
  };
});

connection.onNotification(LIVE_STATS_NOTIFICATION, (s: LiveStats) => { live = s; });

documents.listen(connection);
connection.listen();
