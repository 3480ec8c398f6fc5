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
  /** Anything that lists or counts products: lists, featured, search, facets, carts. */
  PRODUCTS: 'products',
  /** Anything that shows a category or a category's product count. */
  CATEGORIES: 'categories',
  /** Anything that shows a promotion code (the active list). */
  PROMOTIONS: 'promotions',
  /** Anything that shows reviewers' names. */
  REVIEWERS: 'reviewers',
  /** One product's own page and its reviews. */
  product: (id: number) => `product:${id}`,
} as const;
