import { buildApp } from './src/app.ts';
import { loadConfig } from './src/config.ts';
import { openPglite } from './src/db/database.ts';
import { migrate } from './src/db/migrate.ts';
const database = await openPglite('memory://');
await migrate(database);
const db = database.db;
await db.insertInto('categories').values([{name:'Miniatures'},{name:'Lamps'}]).execute();
await db.insertInto('users').values({email:'a@x', username:'a', first_name:'Ann', last_name:'lee', password:'!'}).execute();
await db.insertInto('products').values([
 {name:'Red Dragon Miniature', price:'19.90', category_id:1, sku:'A1', material:'PLA', stock_quantity: 3, is_featured: true, description: 'A 3D printed dragon'},
 {name:'Moon Lamp', price:'49.00', category_id:2, sku:'A2', material:'PETG', stock_quantity: 0},
]).execute();
await db.insertInto('product_images').values({product_id:1, image_url:'https://img/x.jpg', is_main:true}).execute();
await db.insertInto('product_images').values({product_id:1, image:'products/y.jpg'}).execute();
await db.insertInto('reviews').values({product_id:1, user_id:1, rating:4, review_text:'nice'}).execute();
const app = await buildApp(loadConfig({ LOG_LEVEL: 'warn' }), { database });
for (const url of ['/api/', '/api/products/', '/api/products', '/api/products/?search=drag', '/api/products/?search=dragn', '/api/products/1/', '/api/products/abc/', '/api/products/categories/', '/api/products/search/?q=minia', '/api/products/search/?q=3d', '/api/products/advanced-search/?q=lamp&sort=price_asc', '/api/products/1/reviews/', '/api/products/?min_price=abc', '/api/products/?category=1,9', '/api/products/?page=3', '/nope', '/health/', '/api/docs/json']) {
  const r = await app.inject({ url, headers: { host: 'localhost:8000' } });
  console.log(url, r.statusCode, r.headers.location ?? '', r.body.slice(0, 400));
}
const r = await app.inject({ method: 'PATCH', url: '/api/products/1/' });
console.log('PATCH', r.statusCode, r.headers.allow, r.body);
const r2 = await app.inject({ method: 'POST', url: '/api/products/', headers: {'content-type':'application/json'}, payload: '{bad' });
console.log('POST bad', r2.statusCode, r2.body);
await app.close(); await database.close();
