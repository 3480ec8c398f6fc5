// Every background task, its queue and its payload, in one place (the seed's Celery routes).
// Producers name a task; the queue it runs on is decided here, never at the call site.

export const QUEUES = ['products', 'orders', 'payments', 'cart', 'default'] as const;
export type QueueName = (typeof QUEUES)[number];

export interface TaskPayloads {
  /** The order's confirmation (or guest receipt). */
  send_order_confirmation: { orderId: number };
  /** Shipped (with the tracking number) or delivered. */
  send_order_status_email: { orderId: number; status: 'shipped' | 'delivered' };
  /** Makes a single-use reset token for this address's account, if any, and mails the link. */
  send_password_reset: { email: string; /** This request's own key for its email (made when queued). */ ref?: string };
  /** Staff digest of products at or below their low-stock threshold. */
  check_low_stock: Record<string, never>;
  /** Expired guest sessions, revoked tokens and lapsed checkout holds. */
  cleanup_expired_sessions: Record<string, never>;
  /** Reminders for carts left alone, deletion of old guest carts. */
  process_abandoned_carts: Record<string, never>;
  /** Re-makes the hot catalog answers. */
  warm_cache: Record<string, never>;
  /** Gives back the stock and codes of checkouts past their expiry. */
  release_lapsed_checkouts: Record<string, never>;
  /** Queues again the order emails of the last day whose job never reached the queue. */
  send_missed_order_emails: Record<string, never>;
  /** Trims finished jobs and old effect records. */
  trim_jobs: Record<string, never>;
  /** The slow variants (AVIF) of an uploaded product image or category image. */
  make_image_variants: { kind: 'product' | 'category'; id: number };
  /** Removes stored media files of removed images that no row names any more. */
  delete_media_files: { keys: string[] };
}

export type TaskName = keyof TaskPayloads;

export const TASK_QUEUE: Record<TaskName, QueueName> = {
  send_order_confirmation: 'orders',
  send_order_status_email: 'orders',
  send_password_reset: 'default',
  check_low_stock: 'products',
  cleanup_expired_sessions: 'default',
  process_abandoned_carts: 'cart',
  warm_cache: 'default',
  release_lapsed_checkouts: 'payments',
  send_missed_order_emails: 'orders',
  trim_jobs: 'default',
  make_image_variants: 'products',
  delete_media_files: 'products',
};

export function isQueue(name: string): name is QueueName {
  return (QUEUES as readonly string[]).includes(name);
}
