// Outgoing email: SMTP through nodemailer in production (EMAIL_HOST), and in embedded mode an
// outbox folder of .eml files (DATA_DIR/outbox) plus a log line, so a shop without a mail server
// still sees every message it would have sent.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import { writeWhole } from '../disk.ts';

export interface Mail {
  to: string | string[];
  subject: string;
  text: string;
  html: string;
  /** The same on every try of one message, so a resend after a crash is shown once (default: a new one). */
  messageId?: string;
}

export interface Mailer {
  readonly kind: 'smtp' | 'outbox';
  send(mail: Mail): Promise<void>;
  close(): void;
}

type Log = { info(obj: object, msg: string): void };

export interface SmtpOptions {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  password?: string;
  from: string;
}

export class SmtpMailer implements Mailer {
  readonly kind = 'smtp';
  private readonly transport: Transporter;

  constructor(
    private readonly o: SmtpOptions,
    private readonly log?: Log,
  ) {
    this.transport = nodemailer.createTransport({
      host: o.host,
      port: o.port,
      secure: o.secure,
      pool: true,
      // A server that stops answering fails the send (the job retries) instead of holding the
      // job for nodemailer's default ten minutes.
      connectionTimeout: 10_000,
      greetingTimeout: 30_000, // some relays delay their greeting on purpose
      socketTimeout: 60_000,
      ...(o.user ? { auth: { user: o.user, pass: o.password ?? '' } } : {}),
    });
  }

  async send(mail: Mail): Promise<void> {
    const info = await this.transport.sendMail({ from: this.o.from, ...mail });
    this.log?.info({ to: mail.to, subject: mail.subject, messageId: info.messageId }, 'email sent');
  }

  close(): void {
    this.transport.close();
  }
}

export class OutboxMailer implements Mailer {
  readonly kind = 'outbox';
  // nodemailer builds the message (MIME, headers, both parts) without sending it.
  private readonly transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });

  constructor(
    readonly dir: string,
    private readonly from: string,
    private readonly log?: Log,
  ) {}

  async send(mail: Mail): Promise<void> {
    const info = (await this.transport.sendMail({ from: this.from, ...mail })) as { message: Buffer };
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`);
    // Whole or not at all: a full disk leaves no empty or cut-off message (the job retries).
    await writeWhole(file, info.message);
    this.log?.info({ to: mail.to, subject: mail.subject, file }, 'email written to the outbox');
  }

  close(): void {}
}
