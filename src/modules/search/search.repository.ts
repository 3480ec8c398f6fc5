// Facet counts for advanced search, in one statement.
import { sql } from 'kysely';
import type { Db } from '../../db/database.ts';
import { productCondition, type ProductFilter } from '../catalog/catalog.repository.ts';

export interface FacetRow {
  total: number;
  categories: { id: number; name: string; count: number }[];
  materials: { name: string; count: number }[];
  price_min: string | null;
  price_max: string | null;
  weight_min: string | null;
  weight_max: string | null;
}

/**
 * Facets are disjunctive: category counts apply every filter but the category choice, material
 * counts every filter but the material choice, so a shopper sees what widening a choice gives.
 * `total` counts the products `filter` keeps before either choice.
 */
export async function facets(db: Db, filter: ProductFilter, chosen: { categoryIds: number[]; materials: string[] }): Promise<FacetRow> {
  const byMaterial = chosen.materials.length ? sql`material in (${sql.join(chosen.materials)})` : sql`true`;
  const byCategory = chosen.categoryIds.length ? sql`category_id in (${sql.join(chosen.categoryIds)})` : sql`true`;
  const { rows } = await sql<FacetRow>`
    with base as (select p.category_id, p.material, p.price, p.weight from products p where ${productCondition(filter)})
    select (select count(*)::int from base) as total,
           coalesce((select json_agg(json_build_object('id', c.id, 'name', c.name, 'count', f.n) order by c.name)
                       from (select category_id, count(*)::int as n from base where ${byMaterial} group by category_id) f
                       join categories c on c.id = f.category_id), '[]') as categories,
           coalesce((select json_agg(json_build_object('name', m.material, 'count', m.n) order by m.material)
                       from (select material, count(*)::int as n from base where material <> '' and ${byCategory} group by material) m), '[]') as materials,
           (select min(price) from base) as price_min, (select max(price) from base) as price_max,
           (select min(weight) from base) as weight_min, (select max(weight) from base) as weight_max`.execute(db);
  return rows[0]!;
}
