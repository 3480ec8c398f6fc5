// Domain events, published by services after their transaction commits. Cache invalidation,
// search refresh, emails and image work subscribe here; nothing calls "clear cache" by hand.
// Handlers run after the publisher has moved on; a failing handler is logged, never thrown back.
import type { FastifyBaseLogger } from 'fastify';

/**
 * What a product write knows of the row before or after it: the columns a cached page can depend
 * on, so a subscriber can tell what the write changed (modules/catalog/catalog.tags.ts).
 */
export interface ProductFacts {
  id: number;
  category_id: number;
  is_active: boolean;
  is_featured: boolean;
  price: string;
  stock_quantity: number;
  low_stock_threshold: number;
  material: string;
  weight: string;
  print_time: number;
  name: string;
  description: string;
}

/** A product's stock count before and after a checkout, an order or a cancel moved it. */
export interface StockMove {
  id: number;
  category_id: number;
  before: number;
  after: number;
  low_stock_threshold: number;
}

export interface DomainEvents {
  'product.created': { id: number; after: ProductFacts };
  'product.updated': { id: number; fields: string[]; before: ProductFacts; after: ProductFacts };
  /** Deactivated (products are never deleted: orders point at them). */
  'product.deleted': { id: number; before: ProductFacts };
  'category.created': { id: number };
  'category.updated': { id: number; fields: string[] };
  'category.deleted': { id: number };
  'review.created': { id: number; productId: number };
  'review.updated': { id: number; productId: number };
  'review.deleted': { id: number; productId: number };
  // Product images (the media issue publishes these; a category's image is a category.updated).
  'image.created': { id: number; productId: number };
  /** `variants`: only variants were added (the AVIF job): the card's picture is the same. */
  'image.updated': { id: number; productId: number; variants?: true };
  'image.deleted': { id: number; productId: number };
  'user.registered': { id: number };
  'user.updated': { id: number; fields: string[] };
  'cart.changed': { cartId: number; userId: number | null };
  // Stock moved without a product edit: reserved or released by a checkout, restored by a cancel.
  'stock.changed': { productIds: number[]; moves: StockMove[] };
  'order.created': { id: number; userId: number | null };
  'order.paid': { id: number; userId: number | null };
  'order.status_changed': { id: number; userId: number | null; from: string; to: string };
  'promotion.created': { id: number };
  'promotion.updated': { id: number };
  'promotion.deleted': { id: number };
}

export type EventName = keyof DomainEvents;
/** Queues an event to publish once the surrounding transaction has committed. */
export type Publish = <K extends EventName>(name: K, payload: DomainEvents[K]) => void;
type Handler<K extends EventName> = (payload: DomainEvents[K]) => void | Promise<void>;

export class EventBus {
  private readonly handlers = new Map<EventName, Handler<never>[]>();

  constructor(private readonly log?: FastifyBaseLogger) {}

  on<K extends EventName>(name: K, handler: Handler<K>): () => void {
    const list = this.handlers.get(name) ?? [];
    list.push(handler as Handler<never>);
    this.handlers.set(name, list);
    return () => {
      const i = list.indexOf(handler as Handler<never>);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Call after commit. Returns when every handler has finished (tests await it; routes need not). */
  async emit<K extends EventName>(name: K, payload: DomainEvents[K]): Promise<void> {
    const list = this.handlers.get(name);
    if (!list?.length) return;
    await Promise.all(
      list.map(async (h) => {
        try {
          await (h as Handler<K>)(payload);
        } catch (err) {
          this.log?.error({ err, event: name }, 'event handler failed');
        }
      }),
    );
  }
}
