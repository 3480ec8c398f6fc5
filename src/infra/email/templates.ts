// The shop's emails, each as plain text and HTML. Every value from the database is escaped in the
// HTML part; the text part is what mail clients without HTML show.

export interface Rendered {
  subject: string;
  text: string;
  html: string;
}

const esc = (s: string | number) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body style="font-family:sans-serif">${body}<p style="color:#777">Pasargad Prints</p></body></html>`;
}

export interface OrderLine {
  name: string;
  quantity: number;
  total: string;
}

export interface OrderMail {
  orderNumber: string;
  name: string;
  lines: OrderLine[];
  subtotal: string;
  discount: string;
  shipping: string;
  tax: string;
  total: string;
  /** Where the shopper can follow the order (the storefront's tracking page). */
  trackUrl: string;
  guest: boolean;
}

export function orderConfirmation(o: OrderMail): Rendered {
  const greeting = o.name ? `Hello ${o.name},` : 'Hello,';
  const lines = o.lines.map((l) => `  ${l.quantity} × ${l.name}  $${l.total}`).join('\n');
  const money = [`Items: $${o.subtotal}`, ...(o.discount !== '0.00' ? [`Discount: -$${o.discount}`] : []), `Shipping: $${o.shipping}`, ...(o.tax !== '0.00' ? [`Tax: $${o.tax}`] : []), `Total: $${o.total}`];
  const follow = o.guest ? `Follow it with your order number and this email address: ${o.trackUrl}` : `Follow it in your account: ${o.trackUrl}`;
  return {
    subject: `Your order ${o.orderNumber} is confirmed`,
    text: `${greeting}\n\nThank you for your order ${o.orderNumber}. We are printing it now.\n\n${lines}\n\n${money.join('\n')}\n\n${follow}\n`,
    html: page(
      `Order ${o.orderNumber}`,
      `<p>${esc(greeting)}</p><p>Thank you for your order <strong>${esc(o.orderNumber)}</strong>. We are printing it now.</p>
<table>${o.lines.map((l) => `<tr><td>${esc(l.quantity)} × ${esc(l.name)}</td><td style="text-align:right">$${esc(l.total)}</td></tr>`).join('')}</table>
<p>${money.map(esc).join('<br>')}</p><p><a href="${esc(o.trackUrl)}">Follow your order</a></p>`,
    ),
  };
}

export function orderShipped(o: { orderNumber: string; name: string; trackingNumber: string; estimatedDelivery: string | null; trackUrl: string }): Rendered {
  const when = o.estimatedDelivery ? ` It should arrive by ${o.estimatedDelivery}.` : '';
  const tracking = o.trackingNumber ? `Tracking number: ${o.trackingNumber}` : 'A tracking number will follow.';
  return {
    subject: `Your order ${o.orderNumber} is on its way`,
    text: `Hello ${o.name || 'there'},\n\nYour order ${o.orderNumber} has shipped.${when}\n${tracking}\n\n${o.trackUrl}\n`,
    html: page(`Order ${o.orderNumber} shipped`, `<p>Hello ${esc(o.name || 'there')},</p><p>Your order <strong>${esc(o.orderNumber)}</strong> has shipped.${esc(when)}</p><p>${esc(tracking)}</p><p><a href="${esc(o.trackUrl)}">Track it</a></p>`),
  };
}

export function orderDelivered(o: { orderNumber: string; name: string }): Rendered {
  return {
    subject: `Your order ${o.orderNumber} was delivered`,
    text: `Hello ${o.name || 'there'},\n\nYour order ${o.orderNumber} was delivered. We hope you enjoy your prints.\n`,
    html: page(`Order ${o.orderNumber} delivered`, `<p>Hello ${esc(o.name || 'there')},</p><p>Your order <strong>${esc(o.orderNumber)}</strong> was delivered. We hope you enjoy your prints.</p>`),
  };
}

export function abandonedCart(o: { name: string; items: { name: string; quantity: number }[]; cartUrl: string }): Rendered {
  return {
    subject: 'You left something in your cart',
    text: `Hello ${o.name || 'there'},\n\nYour cart is waiting:\n${o.items.map((i) => `  ${i.quantity} × ${i.name}`).join('\n')}\n\n${o.cartUrl}\n`,
    html: page('Your cart', `<p>Hello ${esc(o.name || 'there')},</p><p>Your cart is waiting:</p><ul>${o.items.map((i) => `<li>${esc(i.quantity)} × ${esc(i.name)}</li>`).join('')}</ul><p><a href="${esc(o.cartUrl)}">Back to your cart</a></p>`),
  };
}

export function lowStockDigest(products: { id: number; name: string; sku: string; stock: number; threshold: number }[]): Rendered {
  return {
    subject: `Low stock: ${products.length} product${products.length === 1 ? '' : 's'}`,
    text: `These products are at or below their low-stock threshold:\n\n${products.map((p) => `  ${p.name} (${p.sku}): ${p.stock} left, threshold ${p.threshold}`).join('\n')}\n`,
    html: page(
      'Low stock',
      `<p>These products are at or below their low-stock threshold:</p><table><tr><th>Product</th><th>SKU</th><th>Left</th><th>Threshold</th></tr>${products
        .map((p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.sku)}</td><td>${esc(p.stock)}</td><td>${esc(p.threshold)}</td></tr>`)
        .join('')}</table>`,
    ),
  };
}

export function passwordReset(o: { name: string; url: string; minutes: number }): Rendered {
  return {
    subject: 'Reset your Pasargad Prints password',
    text: `Hello ${o.name || 'there'},\n\nSomeone asked to reset the password of your account. If it was you, choose a new one here within ${o.minutes} minutes:\n\n${o.url}\n\nIf it was not you, ignore this email: your password stays as it is.\n`,
    html: page(
      'Reset your password',
      `<p>Hello ${esc(o.name || 'there')},</p><p>Someone asked to reset the password of your account. If it was you, choose a new one within ${esc(o.minutes)} minutes:</p><p><a href="${esc(o.url)}">Choose a new password</a></p><p>If it was not you, ignore this email: your password stays as it is.</p>`,
    ),
  };
}
