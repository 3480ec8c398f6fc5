"""Locust scenarios for Pasargad Prints, for teams that run Locust (Debian: apt-get install python3-locust).

The same shopper mix as `npm run bench` (bench/run.ts, buildMix): 3 list : 2 detail : 1 search
over varied pages, orderings, category and stock filters, product ids and queries (typos
included), plus a checkout mix: browse, add to a guest cart, check out and pay on the built-in
test payment provider, then verify the order.

    locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 50 -r 10 -t 60s

Environment:
    THINK_TIME=0          no pause between a user's requests (throughput); default 1-3 s (latency)
    CHECKOUT_WEIGHT=1     checkout users per SHOPPER_WEIGHT shoppers (0: the shopper mix alone)
    SHOPPER_WEIGHT=9

The server must use the test provider (no STRIPE_SECRET_KEY; with NODE_ENV=production also
ALLOW_TEST_PAYMENTS=true) for the checkout mix, and should list the load generator's address in
RATE_LIMIT_ALLOWLIST: otherwise the per-IP limits (100/hour anonymous, 10 checkouts an hour)
answer most requests with 429, which Locust counts as failures.
"""

import os
import random
import threading
from urllib.parse import quote, urlsplit

from locust import HttpUser, between, constant, task

ORDERINGS = ["", "&ordering=price", "&ordering=-price", "&ordering=name", "&ordering=-average_rating"]
WORDS = ["dragon", "lamp", "vase", "3d", "minia", "drag", "gear", "planter", "moon", "knight", "resin", "helmet", "chess", "dragn", "wizrd", "articulated dragon"]


def think_time():
    return constant(0) if os.environ.get("THINK_TIME", "") == "0" else between(1, 3)


class Catalog:
    """Product ids, category ids and page count, fetched once per Locust process (as buildMix does)."""

    _lock = threading.Lock()
    ids = []
    categories = []
    pages = 1

    @classmethod
    def load(cls, client):
        with cls._lock:
            if cls.ids:
                return
            ids = []
            for ordering in ["-created_at", "price", "name"]:
                for page in range(1, 6):
                    with client.get(f"/api/products/?page_size=100&ordering={ordering}&page={page}", name="(setup) product ids", catch_response=True) as r:
                        if r.status_code != 200:
                            r.success()  # past the last page, or limited: not part of the mix
                            break
                        body = r.json()
                    ids.extend(p["id"] for p in body["results"])
                    if not body["next"]:
                        break
            with client.get("/api/products/categories/?page_size=100", name="(setup) categories") as r:
                cats = [c["id"] for c in r.json()["results"]] if r.status_code == 200 else []
            count = client.get("/api/products/", name="(setup) count").json().get("count", 20)
            if not ids:
                raise RuntimeError("no products: seed the catalog first (pasargad seed --products 1000)")
            cls.ids, cls.categories, cls.pages = ids, cats, max(1, min(50, count // 20))


class ShopperUser(HttpUser):
    """The seed's read mix. Names group the URLs so the report has one line per kind of request."""

    weight = int(os.environ.get("SHOPPER_WEIGHT", "9"))
    wait_time = think_time()

    def on_start(self):
        Catalog.load(self.client)

    @task(3)
    def product_list(self):
        filter_, name = "", "list"
        roll = random.randrange(4)
        if roll == 0 and Catalog.categories:
            filter_, name = f"&category={random.choice(Catalog.categories)}", "list by category"
        elif random.randrange(4) == 0:
            filter_, name = "&in_stock=true", "list in stock"
        page = 1 + random.randrange(3) if filter_ else 1 + random.randrange(Catalog.pages)
        self.client.get(f"/api/products/?page={page}{random.choice(ORDERINGS)}{filter_}", name=f"/api/products/ ({name})")

    @task(2)
    def product_detail(self):
        self.client.get(f"/api/products/{random.choice(Catalog.ids)}/", name="/api/products/{id}/")

    @task(1)
    def search(self):
        self.client.get(f"/api/products/search/?q={quote(random.choice(WORDS))}", name="/api/products/search/?q=")


class CheckoutUser(HttpUser):
    """Browse, add to a guest cart (kept by the sessionid cookie), check out, pay, verify."""

    weight = int(os.environ.get("CHECKOUT_WEIGHT", "1"))
    wait_time = think_time()

    def on_start(self):
        Catalog.load(self.client)

    @task
    def buy(self):
        self.client.cookies.clear()  # each purchase is a new guest with a new cart
        page = self.client.get(f"/api/products/?in_stock=true&page={1 + random.randrange(3)}", name="/api/products/ (list in stock)")
        if page.status_code != 200 or not page.json()["results"]:
            return
        for product in random.sample(page.json()["results"], k=min(2, len(page.json()["results"]))):
            self.client.get(f"/api/products/{product['id']}/", name="/api/products/{id}/")
            with self.client.post("/api/cart/add/", json={"product_id": product["id"], "quantity": 1}, name="/api/cart/add/", catch_response=True) as r:
                # Sold out since the list was made (other users bought it): a shop's answer, not an error.
                if r.status_code == 400 and "stock" in r.text:
                    r.success()
        self.client.get("/api/cart/", name="/api/cart/")
        n = random.randrange(1_000_000)
        address = {"name": "Load Test", "email": f"load{n}@example.com", "address": "1 Test Street", "city": "Portland", "state": "OR", "postal_code": "97201", "country": "US"}
        with self.client.post("/api/payments/create-checkout-session/", json={"email": address["email"], "shipping_address": address}, name="/api/payments/create-checkout-session/", catch_response=True) as r:
            if r.status_code == 400 and "empty" in r.text:
                r.success()  # everything picked sold out meanwhile
                return
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            session = r.json()
        # The test provider's page is on this server; paying redirects (303) to the storefront.
        path = urlsplit(session["checkout_url"]).path
        with self.client.post(path, data={"outcome": "paid"}, allow_redirects=False, name="/api/payments/test-checkout/{id}/", catch_response=True) as r:
            if r.status_code != 303:
                r.failure(f"pay: {r.status_code}: {r.text[:200]}")
                return
        with self.client.get(f"/api/payments/verify-checkout-session/?session_id={quote(session['checkout_session_id'])}", name="/api/payments/verify-checkout-session/", catch_response=True) as r:
            if r.status_code != 200 or r.json().get("status") != "success":
                r.failure(f"verify: {r.status_code}: {r.text[:200]}")
