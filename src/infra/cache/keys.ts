// Every cache key family and tag in one place (the seed's CacheKeys). Key families name what an
// entry is; tags name what it shows, so a write can drop exactly the entries that could show it.

/** Keys of the `default` store, as the seed's templates. */
export const CacheKeys = {
  CATEGORY_IDS: 'category_ids',
  USER_CART: (userId: number) => `user:${userId}:cart`,
} as const;

/** Response families of the `api` store, with their time to live in seconds. */
export const ResponseKeys = {
  PRODUCT_LIST: { keyPrefix: 'product_list', ttl: 300 },
  FEATURED_PRODUCTS: { keyPrefix: 'featured_products', ttl: 3600 },
  PRODUCT_DETAIL: { keyPrefix: 'product', ttl: 600 },
  CATEGORY_LIST: { keyPrefix: 'category_list', ttl: 3600 },
  CATEGORY_DETAIL: { keyPrefix: 'category', ttl: 3600 },
  REVIEW_LIST: { keyPrefix: 'reviews', ttl: 600 },
  SEARCH: { keyPrefix: 'search', ttl: 120 },
  ADVANCED_SEARCH: { keyPrefix: 'advanced_search', ttl: 120 },
  ACTIVE_PROMOTIONS: { keyPrefix: 'promotions', ttl: 600 },
  RECOMMENDATIONS: { keyPrefix: 'recommendations', ttl: 300 },
} as const;

export const Tags = {
  /**
   * Anything that shows product cards without naming each one (recommendations, promotions):
   * dropped by any change to what a card shows or to which products are listed. Product lists and
   * search name their cards and query dimensions instead (modules/catalog/catalog.tags.ts).
   */
  PRODUCTS: 'products',
  /** Anything that shows a category (dropped by category writes). */
  CATEGORIES: 'categories',
  /** Anything that shows category names only (product cards, carts, text search): dropped by renames. */
  CATEGORY_NAMES: 'category_names',
  /** Anything that shows how many active products categories hold (the category pages). */
  CATEGORY_COUNTS: 'category_counts',
  /** What shows one category's product count (the pages of its products). */
  categoryCount: (id: number) => `count:${id}`,
  /** The pages that hold one product's card. */
  card: (id: number) => `card:${id}`,
  /** Anything that shows a promotion code (the active list). */
  PROMOTIONS: 'promotions',
  /** Anything that shows reviewers' names. */
  REVIEWERS: 'reviewers',
  /** One product's own page, its reviews, and the carts holding it. */
  product: (id: number) => `product:${id}`,
} as const;
