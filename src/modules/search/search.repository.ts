// Facet counts for advanced search, in one statement over the products the other filters keep.
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

export async function facets(db: Db, filter: ProductFilter): Promise<FacetRow> {
  const { rows } = await sql<FacetRow>`
    with base as (select p.category_id, p.material, p.price, p.weight from products p where ${productCondition(filter)})
    select (select count(*)::int from base) as total,
           coalesce((select json_agg(json_build_object('id', c.id, 'name', c.name, 'count', f.n) order by c.name)
                       from (select category_id, count(*)::int as n from base group by category_id) f
                       join categories c on c.id = f.category_id), '[]') as categories,
           coalesce((select json_agg(json_build_object('name', m.material, 'count', m.n) order by m.material)
                       from (select material, count(*)::int as n from base where material <> '' group by material) m), '[]') as materials,
           (select min(price) from base) as price_min, (select max(price) from base) as price_max,
           (select min(weight) from base) as weight_min, (select max(weight) from base) as weight_max`.execute(db);
  return rows[0]!;
}
