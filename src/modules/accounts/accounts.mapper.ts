import { apiTime } from '../../infra/http/format.ts';
import type { AddressRow, UserRow } from './accounts.repository.ts';
import type { Address, User } from './accounts.schemas.ts';

export function toUser(u: UserRow): User {
  return {
    id: u.id,
    email: u.email,
    username: u.username,
    first_name: u.first_name,
    last_name: u.last_name,
    phone: u.phone,
    date_of_birth: u.date_of_birth,
    newsletter_subscription: u.newsletter_subscription,
    created_at: apiTime(u.created_at),
    is_staff: u.is_staff,
  };
}

export function toAddress(a: AddressRow): Address {
  return {
    id: a.id,
    address_type: a.address_type,
    street_address: a.street_address,
    apartment: a.apartment,
    city: a.city,
    state: a.state,
    postal_code: a.postal_code,
    country: a.country,
    is_default: a.is_default,
    created_at: apiTime(a.created_at),
    updated_at: apiTime(a.updated_at),
    user: a.user_id,
  };
}
