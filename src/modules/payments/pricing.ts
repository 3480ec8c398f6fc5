// What a checkout costs, worked out on the server from the database's prices (the client's totals
// are never read), in integer cents. API-CONTRACT.md §4.14: shipping is free from
// SHIPPING_FREE_FROM, else SHIPPING_BASE plus SHIPPING_PER_KG per started kilogram; tax only with
// TAX_RATE, on the discounted item total.
import type { Config } from '../../config.ts';
import type { CheckoutLine } from '../../db/schema.ts';
import { percentOf, toCents } from '../../infra/money.ts';

export interface Totals {
  subtotal: number;
  discount: number;
  shipping: number;
  tax: number;
  total: number;
  /** Grams. */
  weight: number;
}

export interface PricingInput {
  lines: readonly CheckoutLine[];
  /** Cents off the item total (already capped by the promotion rules). */
  discount: number;
  freeShipping: boolean;
  fulfillment: 'shipping' | 'pickup';
}

export function lineTotal(line: Pick<CheckoutLine, 'price' | 'quantity'>): number {
  return toCents(line.price) * line.quantity;
}

/** Weights are in grams with two decimals; kept in hundredths of a gram to stay exact. */
function weightHundredths(lines: readonly CheckoutLine[]): number {
  return lines.reduce((sum, l) => sum + toCents(l.weight) * l.quantity, 0);
}

export function priceCheckout(input: PricingInput, pricing: Config['pricing']): Totals {
  const subtotal = input.lines.reduce((sum, l) => sum + lineTotal(l), 0);
  const discount = Math.min(Math.max(0, input.discount), subtotal);
  const hundredths = weightHundredths(input.lines);
  const kilograms = Math.ceil(hundredths / 100_000);
  let shipping = 0;
  if (input.fulfillment === 'shipping' && !input.freeShipping && subtotal < pricing.freeShippingFrom) {
    shipping = pricing.shippingBase + pricing.shippingPerKg * kilograms;
  }
  const tax = percentOf(subtotal - discount, pricing.taxRate);
  return { subtotal, discount, shipping, tax, total: subtotal - discount + shipping + tax, weight: hundredths / 100 };
}
