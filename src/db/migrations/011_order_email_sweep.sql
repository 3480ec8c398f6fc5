-- send_missed_order_emails looks up the shipments and deliveries of the last day.
CREATE INDEX orders_shipped ON orders (shipped_at) WHERE shipped_at IS NOT NULL;
CREATE INDEX orders_delivered ON orders (delivered_at) WHERE delivered_at IS NOT NULL;
