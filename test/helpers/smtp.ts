// A real SMTP server on loopback for tests (the smtp-server package): it keeps every message.
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';

export interface Received {
  from: string;
  to: string[];
  raw: string;
  subject: string;
  messageId: string;
  /** The message with quoted-printable undone, for reading the text. */
  body: string;
}

function decodeQp(s: string): string {
  return Buffer.from(s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

/**
 * A real SMTP server on loopback that keeps what it receives. With `hold(ms)` it waits that long
 * before answering the end of each message's data, as a slow server still checking a message
 * does; a message whose sender went away meanwhile is not kept (it goes to `dropped`), as a server
 * that had not yet committed it does not deliver it. (A server that commits before it answers
 * would deliver it: then the sender's retry is a second copy with the same Message-ID.)
 */
export async function smtpSink() {
  const inbox: Received[] = [];
  const dropped: Received[] = [];
  const closed = new Set<string>();
  let holdMs = 0;
  let holding = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onClose(session) {
      closed.add(session.id);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'mi').exec(raw)?.[1]?.trim() ?? '';
        const message = { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw, subject: header('Subject'), messageId: header('Message-ID'), body: decodeQp(raw) };
        if (holdMs) {
          holding++;
          for (const end = Date.now() + holdMs; Date.now() < end && !closed.has(session.id); ) await sleep(20);
          holding--;
          if (closed.has(session.id)) return void dropped.push(message);
        }
        inbox.push(message);
        callback();
      });
    },
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.server.address() as { port: number }).port)));
  return {
    inbox,
    dropped,
    port,
    /** Answers each message's data `ms` late (0: at once). */
    hold(ms: number) {
      holdMs = ms;
    },
    /** Messages received and not yet answered. */
    holding: () => holding,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
